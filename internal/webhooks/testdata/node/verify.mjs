// Verifies deliveries with the standardwebhooks npm package: reads a JSON
// array of {secret, body, headers} on stdin, prints how many verified,
// exits 1 at the first that does not.
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
let ok = 0;
for (const d of JSON.parse(input)) {
  try {
    new Webhook(d.secret).verify(d.body, d.headers);
    ok++;
  } catch (e) {
    console.error(`delivery ${d.headers["webhook-id"]} did not verify: ${e.message}`);
    process.exit(1);
  }
}
console.log(`verified ${ok}`);

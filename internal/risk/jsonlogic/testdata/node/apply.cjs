// Reads a JSON array of {logic, data} cases on stdin and writes a JSON
// array with, per case, {result} or {error} as json-logic-js answers.
const jsonLogic = require("json-logic-js");
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const cases = JSON.parse(input);
  const out = cases.map((c) => {
    try {
      const r = jsonLogic.apply(c.logic, c.data);
      return r === undefined ? { undefined: true } : { result: r };
    } catch (e) {
      return { error: String(e && e.message ? e.message : e) };
    }
  });
  process.stdout.write(JSON.stringify(out));
});

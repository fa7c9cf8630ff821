// Decrypts one aes128gcm Web Push body (RFC 8291) with the subscriber's
// private key and auth secret, using http_ece, an implementation Abacus
// did not write. argv: body file, private key (base64url, 32 bytes),
// auth secret (base64url). Prints the plaintext.
const crypto = require('crypto');
const fs = require('fs');
const ece = require('http_ece');

const [body, priv, auth] = process.argv.slice(2);
const key = crypto.createECDH('prime256v1');
key.setPrivateKey(Buffer.from(priv, 'base64url'));
const plain = ece.decrypt(fs.readFileSync(body), { version: 'aes128gcm', privateKey: key, authSecret: auth });
process.stdout.write(plain);

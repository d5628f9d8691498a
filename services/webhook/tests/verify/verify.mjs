// Verifies one delivery with the `standardwebhooks` package from npm, as a partner would.
// Reads {"secret", "headers", "body"} as JSON on stdin; exits 0 when the signature verifies,
// 1 (with the reason) when it does not.
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const delivery = JSON.parse(input);
try {
  new Webhook(delivery.secret).verify(delivery.body, delivery.headers);
  console.log("npm standardwebhooks: verified");
} catch (error) {
  console.error(`npm standardwebhooks: ${error}`);
  process.exit(1);
}

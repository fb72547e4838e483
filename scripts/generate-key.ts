/**
 * `npm run generate-key`: prints a new Fernet key (32 random bytes, url-safe base64) for
 * `ENCRYPTION_KEY`. It goes to stdout only, so it can be piped straight into a secret store.
 */
import { FernetKey } from "../shared/crypto/index.js";

process.stdout.write(`${FernetKey.generate().exportKey()}\n`);

// Prints what bin/compile needs from package.json as shell assignments (one node start instead
// of several): has_<script>, engines, dev_count. Exits 1 when package.json is not valid JSON.
const fs = require("fs");
let p;
try {
  p = JSON.parse(fs.readFileSync("package.json", "utf8"));
} catch (e) {
  console.error(`package.json: ${e.message}`);
  process.exit(1);
}
const q = (v) => "'" + String(v).replace(/'/g, "'\\''") + "'";
const scripts = p.scripts || {};
const has = (n) => (typeof scripts[n] === "string" ? "1" : "");
console.log(`has_prebuild=${has("heroku-prebuild")}`);
console.log(`has_postbuild=${has("heroku-postbuild")}`);
console.log(`has_build=${has("build")}`);
console.log(`has_start=${has("start")}`);
console.log(`engines=${q((p.engines && p.engines.node) || "")}`);
console.log(`dev_count=${Object.keys(p.devDependencies || {}).length}`);

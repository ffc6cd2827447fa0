// CTest's set-up for the node tests (fixture npm_deps in tests/CMakeLists.txt): installs
// tests/package.json's packages with `npm ci` when any is missing, as in a fresh git
// worktree (tests/node_modules is not in git) where `ctest` runs without `make deps`.
// Without it, the tests that import a package failed at once while one test installed
// the packages for itself, so that each of the others passed when run again alone.
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = dirname(fileURLToPath(import.meta.url));
const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
const names = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies });
const missing = names.filter((n) => !existsSync(join(dir, 'node_modules', n, 'package.json')));
if (missing.length === 0) {
  console.log(`tests/node_modules has ${names.join(', ')}`);
} else {
  console.log(`tests/node_modules lacks ${missing.join(', ')}: npm ci`);
  try {
    execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--prefix', dir], { stdio: ['ignore', 2, 2] });
  } catch (e) {
    console.error(`npm ci failed (${e.message}): run \`make deps\` or \`npm install --prefix tests\``);
    process.exit(1);
  }
}

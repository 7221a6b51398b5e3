// Writes CycloneDX SBOMs of the installed dependency tree (run after `npm ci`):
//   artifacts/sbom.cdx.json      runtime: what the container image ships (`npm ci --omit=dev`)
//   artifacts/sbom-dev.cdx.json  everything, including the build and CI tooling
// and prints their component counts. npm fails (ESBOMPROBLEMS) when node_modules
// does not match the lockfile, so a stale install cannot produce a plausible SBOM.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';

const OUTPUTS = [
  { file: 'artifacts/sbom.cdx.json', label: 'runtime', args: ['--omit', 'dev'] },
  { file: 'artifacts/sbom-dev.cdx.json', label: 'runtime + dev', args: [] },
];

mkdirSync('artifacts', { recursive: true });
for (const { file, label, args } of OUTPUTS) {
  const result = spawnSync('npm', ['sbom', '--sbom-format', 'cyclonedx', ...args], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    process.stderr.write(`npm sbom (${label}) exited with status ${result.status}\n`);
    process.exit(1);
  }
  const sbom = JSON.parse(result.stdout) as {
    bomFormat?: string;
    specVersion?: string;
    components?: unknown[];
  };
  const count = sbom.components?.length ?? 0;
  if (sbom.bomFormat !== 'CycloneDX' || count === 0) {
    process.stderr.write(`npm sbom (${label}) did not produce a CycloneDX document with components\n`);
    process.exit(1);
  }
  writeFileSync(file, result.stdout);
  process.stdout.write(`${file}: CycloneDX ${sbom.specVersion}, ${count} components (${label})\n`);
}

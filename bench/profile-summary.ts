// Summarises a V8 .cpuprofile: self time by function and by package, so a
// profile can be read in a terminal or pasted into a report.
//   node bench/profile-summary.ts bench/results/profiles/CPU.….cpuprofile [--top 25]
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';

type ProfileNode = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
};

type CpuProfile = {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  /** Microseconds on the profiled process's monotonic clock. */
  startTime: number;
  endTime: number;
};

/**
 * A stretch of the profile, in milliseconds before its end: the harness knows
 * when the load ran relative to stopping the server, not the server's clock.
 */
export type ProfileWindow = { fromMsBeforeEnd: number; toMsBeforeEnd: number };

export type SelfTimeRow = { name: string; selfMs: number; percent: number };

export type ProfileSummary = {
  totalMs: number;
  byFunction: SelfTimeRow[];
  byPackage: SelfTimeRow[];
  /** Self time with node internals and native code (socket writes, crypto…) charged to the package that called them. */
  byCallingPackage: SelfTimeRow[];
};

export async function summariseProfile(file: string, window?: ProfileWindow): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const fromMicros = window === undefined ? -Infinity : profile.endTime - window.fromMsBeforeEnd * 1000;
  const toMicros = window === undefined ? Infinity : profile.endTime - window.toMsBeforeEnd * 1000;
  let sampledAtMicros = profile.startTime;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  const byCallingPackage = new Map<string, number>();
  const parents = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  const callingPackage = (start: ProfileNode): string => {
    let node: ProfileNode | undefined = start;
    while (node) {
      const url = node.callFrame.url;
      if (url !== '' && !url.startsWith('node:')) return packageOf(url, node.callFrame.functionName);
      const parentId = parents.get(node.id);
      node = parentId === undefined ? undefined : nodes.get(parentId);
    }
    return packageOf(start.callFrame.url, start.callFrame.functionName);
  };
  let totalMicros = 0;
  // timeDeltas[i] is the gap before sample i; the time until the next sample
  // is what sample i's function was running, as DevTools attributes it.
  for (let index = 0; index < profile.samples.length; index += 1) {
    sampledAtMicros += profile.timeDeltas[index] ?? 0;
    const node = nodes.get(profile.samples[index] ?? -1);
    const micros = profile.timeDeltas[index + 1] ?? 0;
    if (!node || micros <= 0 || sampledAtMicros < fromMicros || sampledAtMicros > toMicros) continue;
    totalMicros += micros;
    const frame = node.callFrame;
    const location = shortenUrl(frame.url);
    const functionKey = `${frame.functionName || '(anonymous)'}  ${location}${location ? `:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(functionKey, (byFunction.get(functionKey) ?? 0) + micros);
    const packageKey = packageOf(frame.url, frame.functionName);
    byPackage.set(packageKey, (byPackage.get(packageKey) ?? 0) + micros);
    const callerKey = callingPackage(node);
    byCallingPackage.set(callerKey, (byCallingPackage.get(callerKey) ?? 0) + micros);
  }
  const rows = (totals: Map<string, number>): SelfTimeRow[] =>
    [...totals.entries()]
      .map(([name, micros]) => ({ name, selfMs: micros / 1000, percent: (micros / totalMicros) * 100 }))
      .sort((left, right) => right.selfMs - left.selfMs);
  return {
    totalMs: totalMicros / 1000,
    byFunction: rows(byFunction),
    byPackage: rows(byPackage),
    byCallingPackage: rows(byCallingPackage),
  };
}

function shortenUrl(url: string): string {
  if (url === '') return '';
  const withoutScheme = url.startsWith('file://') ? url.slice('file://'.length) : url;
  const modules = withoutScheme.lastIndexOf('/node_modules/');
  if (modules >= 0) return withoutScheme.slice(modules + '/node_modules/'.length);
  return path.isAbsolute(withoutScheme) ? path.relative(process.cwd(), withoutScheme) : withoutScheme;
}

/** Buckets a frame: an npm package, a workspace folder, node internals, or V8's own pseudo-frames. */
function packageOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node: internals';
  const short = shortenUrl(url);
  if (url.includes('/node_modules/')) {
    const parts = short.split('/');
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? short);
  }
  const parts = short.split('/');
  // packages/platform/src/http/… → packages/platform/src/http
  return parts.slice(0, Math.min(4, parts.length - 1)).join('/') || short;
}

export function formatSummary(summary: ProfileSummary, top: number): string {
  const lines = [`Total sampled CPU: ${summary.totalMs.toFixed(0)} ms`, '', 'Self time by package/folder:'];
  for (const row of summary.byPackage.slice(0, top)) {
    lines.push(
      `  ${row.percent.toFixed(1).padStart(5)}%  ${row.selfMs.toFixed(0).padStart(7)} ms  ${row.name}`,
    );
  }
  lines.push('', 'Self time by package, node internals and native calls charged to the calling package:');
  for (const row of summary.byCallingPackage.slice(0, top)) {
    lines.push(
      `  ${row.percent.toFixed(1).padStart(5)}%  ${row.selfMs.toFixed(0).padStart(7)} ms  ${row.name}`,
    );
  }
  lines.push('', 'Self time by function:');
  for (const row of summary.byFunction.slice(0, top)) {
    lines.push(
      `  ${row.percent.toFixed(1).padStart(5)}%  ${row.selfMs.toFixed(0).padStart(7)} ms  ${row.name}`,
    );
  }
  return lines.join('\n');
}

if (import.meta.main) {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' } },
  });
  if (positionals.length === 0) {
    process.stderr.write('usage: node bench/profile-summary.ts <file.cpuprofile> [--top 25]\n');
    process.exit(2);
  }
  for (const file of positionals) {
    process.stdout.write(`${file}\n${formatSummary(await summariseProfile(file), Number(values.top))}\n\n`);
  }
}

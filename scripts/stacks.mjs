// The Docker stacks the integration tests and benchmarks run on (test/support/stack.ts says what
// each holds), and how to run a command on one of them.
// The same list as test/support/stack.ts (the TypeScript side).
export const STACKS = ['legacy', 'current'];

// Where a docker CLI (20.10 to 29) looks for system-wide plugins on Linux.
const SYSTEM_PLUGIN_DIRS = ['/usr/local/lib/docker/cli-plugins', '/usr/local/libexec/docker/cli-plugins', '/usr/lib/docker/cli-plugins', '/usr/libexec/docker/cli-plugins'];

/**
 * The argv that runs `argv` on `stack`. The legacy stack has no compose plugin: the command runs in
 * a private mount namespace where the system plugin folders are empty, as on a machine with
 * Compose v1 only; nothing outside that namespace changes. Run it with COL_STACK=<stack> set.
 */
export function onStack(stack, argv) {
  if (stack !== 'legacy') return argv;
  const mounts = SYSTEM_PLUGIN_DIRS.map((d) => `if [ -d ${d} ]; then mount -t tmpfs -o size=1m,mode=755 col-no-plugins ${d}; fi`).join('; ');
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', `set -e; ${mounts}; exec "$@"`, 'sh', ...argv];
}

// The images a Dockerfile reads: `FROM` (not a stage of its own), `COPY --from=` and
// `RUN --mount=…,from=`. A compose build then waits for a sibling service only when its Dockerfile
// names that service's image, so services that depend on each other only at run time (web on api)
// still build in parallel. Variables are expanded from the build args and the `ARG`s before the
// first FROM; a name that stays unresolved is reported, and the caller falls back to depends_on.

export interface DockerfileImages {
  images: string[];
  /** Some image name holds a variable with no value: which images it reads cannot be known. */
  unresolved: boolean;
}

/** Logical lines: continuations (`\` at the end, or the `# escape=` character) joined, comments dropped. */
function instructions(text: string): string[] {
  const escape = /^#\s*escape\s*=\s*`/im.test(text.split('\n').slice(0, 5).join('\n')) ? '`' : '\\';
  const lines: string[] = [];
  let pending = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!pending && (line.startsWith('#') || !line)) continue;
    if (line.endsWith(escape)) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    lines.push(pending + line);
    pending = '';
  }
  if (pending) lines.push(pending);
  return lines;
}

function expand(word: string, vars: Record<string, string>): string | undefined {
  let unresolved = false;
  const value = word.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_m, braced: string, fallback: string | undefined, bare: string) => {
    const name = braced ?? bare;
    const found = vars[name] !== undefined && vars[name] !== '' ? vars[name] : fallback;
    if (found === undefined) unresolved = true;
    return found ?? '';
  });
  return unresolved ? undefined : value;
}

export function dockerfileImages(text: string, buildArgs: Record<string, string>): DockerfileImages {
  const vars: Record<string, string> = {};
  const stages = new Set<string>();
  const images = new Set<string>();
  let unresolved = false;
  let seenFrom = false;
  const add = (word: string) => {
    const name = expand(word, vars);
    if (name === undefined) unresolved = true;
    else if (!stages.has(name.toLowerCase()) && !/^\d+$/.test(name) && name !== 'scratch') images.add(name);
  };
  for (const line of instructions(text)) {
    const [keyword, ...words] = line.split(/\s+/);
    switch (keyword.toUpperCase()) {
      case 'ARG':
        // ARGs before the first FROM may name base images; a build arg overrides the default.
        if (!seenFrom) {
          for (const word of words) {
            const [name, ...rest] = word.split('=');
            vars[name] = buildArgs[name] ?? (rest.length ? rest.join('=').replace(/^"(.*)"$/, '$1') : '');
          }
        }
        break;
      case 'FROM': {
        seenFrom = true;
        const args = words.filter((w) => !w.startsWith('--'));
        if (args[0]) add(args[0]);
        if (args[1]?.toLowerCase() === 'as' && args[2]) stages.add(args[2].toLowerCase());
        break;
      }
      case 'COPY':
      case 'ADD':
        for (const w of words) if (w.startsWith('--from=')) add(w.slice('--from='.length));
        break;
      case 'RUN':
        for (const w of words.filter((x) => x.startsWith('--mount='))) {
          const from = /(?:^|,)from=([^,]+)/.exec(w.slice('--mount='.length));
          if (from) add(from[1]);
        }
        break;
    }
  }
  return { images: [...images], unresolved };
}

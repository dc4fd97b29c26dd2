// Azure Pipelines logging commands as the agent reads them from a step's output:
// `##vso[area.action key=value;key=value]message` (with the agent's escapes) and `##[group]…`.

export interface LoggingCommand {
  /** e.g. 'task.setvariable', lower case. */
  command: string;
  properties: Record<string, string>;
  message: string;
}

export type ParsedLine =
  | { kind: 'command'; command: LoggingCommand }
  | { kind: 'format'; format: string; message: string } // ##[group], ##[endgroup], ##[warning], ##[error], ##[section], ##[debug], ##[command]
  | { kind: 'malformed'; reason: string; text: string }
  | { kind: 'text'; text: string };

const VSO = '##vso[';

export function parseLine(line: string): ParsedLine {
  const at = line.indexOf(VSO);
  if (at >= 0) return parseCommand(line.slice(at));
  const format = /^##\[(\w+)\](.*)$/.exec(line.trimStart());
  if (format) return { kind: 'format', format: format[1].toLowerCase(), message: format[2] };
  return { kind: 'text', text: line };
}

function parseCommand(text: string): ParsedLine {
  const close = text.indexOf(']');
  if (close < 0) return { kind: 'malformed', reason: "no closing ']'", text };
  const inside = text.slice(VSO.length, close);
  const space = inside.indexOf(' ');
  const command = (space < 0 ? inside : inside.slice(0, space)).trim().toLowerCase();
  if (!/^[a-z]+\.[a-z]+$/.test(command)) return { kind: 'malformed', reason: `'${command}' is not area.action`, text };
  const properties: Record<string, string> = {};
  if (space >= 0) {
    for (const pair of inside.slice(space + 1).split(';')) {
      if (!pair.trim()) continue;
      const eq = pair.indexOf('=');
      if (eq <= 0) return { kind: 'malformed', reason: `property '${pair.trim()}' is not key=value`, text };
      properties[pair.slice(0, eq).trim().toLowerCase()] = unescapeProperty(pair.slice(eq + 1));
    }
  }
  return { kind: 'command', command: { command, properties, message: unescapeMessage(text.slice(close + 1)) } };
}

/** Undoes the escapes of a logging command's message (`%AZP25` last, so an escaped `%0A` stays `%0A`). */
export function unescapeMessage(s: string): string {
  return s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%AZP25/g, '%');
}

function unescapeProperty(s: string): string {
  return s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%5D/g, ']').replace(/%3B/g, ';').replace(/%AZP25/g, '%');
}

/** Replaces every registered secret with ***, longest first so a secret containing another is masked whole. */
export function mask(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of [...secrets].filter((s) => s.length > 0).sort((a, b) => b.length - a.length)) out = out.split(secret).join('***');
  return out;
}

/** The run's output, every line masked with the secrets registered so far. */
export class RunLog {
  private readonly secrets = new Set<string>();
  constructor(private readonly out: (line: string) => void) {}

  /**
   * Masks `value` whatever its length, as the agent does (its AZP_IGNORE_SECRETS_SHORTER_THAN knob
   * defaults to 0). Each line of a multi-line value is masked too, except lines of under 3
   * characters: a kubeconfig's or PEM's lone braces and dashes would mask half the log.
   */
  addSecret(value: string): void {
    if (value) this.secrets.add(value);
    for (const line of value.split(/\r?\n/)) if (line.trim().length >= 3) this.secrets.add(line);
  }

  print(line: string): void {
    this.out(mask(line, this.secrets));
  }

  /** `text` with the registered secrets masked. */
  masked(text: string): string {
    return mask(text, this.secrets);
  }
}

// The differential corpus: compose projects generated from FEATURES, each read by Compose v2
// (`docker compose config --format json`, the oracle) and by loadCompose, compared field by field
// after compose-canonical.ts (test/support/compose-oracle.ts). Every project has a base file and
// an override file, a `.env` and env files: the feature's lines go into a scaffold whose `sidecar`
// service (in the override file) reads an env file and the `.env`. The corpus is every feature on
// its own, then features combined (those that set different keys), so that rules meet.
// A feature Compose refuses is a project of its own: we must refuse it too, naming what is wrong.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ComposeProject, Oracle, assertAgreesWithCompose, composeConfig, pool, writeProject } from '../support/compose-oracle';
import { composeV2Binary } from '../support/stack';

interface Feature {
  name: string;
  /** Lines of service `app` in the base file (indented by the scaffold). */
  base?: string[];
  /** Lines of service `app` in the override file. */
  override?: string[];
  /** More services in the base file (lines at the level of `app:`). */
  services?: string[];
  /** Top-level sections of the base file: header (`volumes`, `x-defaults: &defaults`) → its lines. */
  top?: Record<string, string[]>;
  /** Top-level sections of the override file. */
  overrideTop?: Record<string, string[]>;
  /** More files of the project. */
  files?: Record<string, string>;
  /** More lines of the project's `.env`. */
  dotenv?: string[];
  env?: Record<string, string>;
  profiles?: string[];
  /** Compose refuses it; so must we (never combined with other features). */
  refused?: RegExp;
  /** Runs only on its own (it replaces the scaffold's files or needs the whole project). */
  alone?: boolean;
}

const FEATURES: Feature[] = [
  // --- interpolation ------------------------------------------------------------------------
  {
    name: 'interpolation: $VAR, ${VAR}, defaults, $$ for a literal $',
    base: ['image: "${REGISTRY-docker.io}/${REPO:-library/nginx}:$TAG"', 'command: ["echo", "$$HOME", "$${TAG}", "${UNSET_VAR}x", "cost: $$5", "$"]', 'working_dir: /srv/${TAG}'],
    env: { REPO: 'team/app' },
  },
  {
    name: 'interpolation: nested defaults, :+ and +, - and :- on an empty value',
    base: ['environment:', '  NESTED: "${A_UNSET:-${B_UNSET:-${TAG}-deep}}"', '  ALT: "${TAG:+set-${TAG}}"', '  ALT2: "${UNSET_X+never}"', '  DASH: "${EMPTY-fallback}"', '  COLONDASH: "${EMPTY:-fallback}"', '  BRACES: "${A_UNSET:-{literal}}"'],
    env: { EMPTY: '' },
  },
  { name: 'interpolation: ${VAR:?message} when set', base: ['labels: {req: "${REQUIRED:?set REQUIRED first}"}'], env: { REQUIRED: 'ok' } },
  { name: 'refused: ${VAR:?message} when unset', base: ['labels: {req: "${REQUIRED:?set REQUIRED first}"}'], refused: /REQUIRED.*is not set: set REQUIRED first/ },
  { name: 'refused: ${VAR?message} when unset', base: ['labels: {req: "${REQUIRED?needed}"}'], refused: /REQUIRED.*is not set: needed/ },
  { name: 'refused: an unclosed ${', base: ['labels: {bad: "${TAG"}'], refused: /unclosed/ },
  { name: 'interpolation: keys are not interpolated', base: ['labels: {"${TAG}": value, plain: "${TAG}"}'] },
  {
    name: 'interpolation: text made numbers and booleans where Compose casts',
    base: [
      'read_only: "${RO:-true}"',
      'init: ${INIT:-false}',
      'cpus: ${CPUS:-0.5}',
      'deploy: {replicas: "${REPL:-2}"}',
      'healthcheck: {test: [CMD, "true"], retries: "${RETRIES:-3}"}',
      'ulimits: {nofile: {soft: "${SOFT:-100}", hard: 200}, nproc: "${NPROC:-64}"}',
      'ports: [{target: "${PORT:-80}"}]',
      'stdin_open: "on"',
      'tty: "${TTY:-false}"',
    ],
  },
  { name: 'refused: a cast that fails', base: ['read_only: "${RO}"'], env: { RO: 'maybe' }, refused: /read_only.*'maybe'.*true or false/ },
  {
    name: '.env: quoting, comments, escapes, several lines, KEY: value, bare names, odd keys',
    dotenv: [
      'QUOTED="bar#baz" # note',
      "SINGLE='it\\'s # not a comment'",
      'MULTI="one',
      'two"',
      'ESC="a\\tb\\\\c\\$d\\101"',
      'COLON: yaml style',
      'PROC_VAR',
      'KEY-WITH-DASH=1',
      'KEY[0]=x',
      'ÜNICODE=ü',
      'EXPANDED=${TAG}-x',
      'export EXPORTED=yes',
      'TRAILING=spaces   ',
    ],
    env: { PROC_VAR: 'from-process' },
    base: ['environment: ["Q=${QUOTED}", "S=${SINGLE}", "M=${MULTI}", "E=${ESC}", "C=${COLON}", "P=${PROC_VAR}", "X=${EXPANDED}", "EX=${EXPORTED}", "T=${TRAILING}"]'],
  },
  { name: '.env: the environment wins over the file', dotenv: ['OVERRIDDEN=from-dotenv'], env: { OVERRIDDEN: 'from-env' }, base: ['labels: ["o=${OVERRIDDEN}"]'] },
  { name: 'refused: .env with a space in a key', dotenv: ['BAD KEY=1'], refused: /\.env', line \d+: the name 'BAD KEY' has a space/ },
  { name: 'refused: .env with an unterminated quote', dotenv: ['OPEN="never closed'], refused: /\.env', line \d+: .*never closed/ },
  {
    name: 'env_file: several files, required: false, format: raw, interpolation, environment wins',
    base: ['env_file: [a.env, {path: b.env, required: true}, {path: missing.env, required: false}, {path: raw.env, format: raw}]', 'environment: {FROM_A: own-wins}'],
    override: ['env_file: [c.env, a.env]', 'environment: [FROM_C]'],
    files: {
      'a.env': 'FROM_A=a\nSHARED=a\nREF=${TAG}-${SHARED}\n',
      'b.env': 'SHARED=b\nFROM_B="b # quoted"\n',
      'raw.env': 'RAW="kept quotes" # and this\nRAW_REF=${TAG}\n',
      'c.env': 'FROM_C=c\n',
    },
  },
  { name: 'refused: a required env_file that does not exist', base: ['env_file: [nope.env]'], refused: /nope\.env/ },
  { name: 'environment: bare names from the environment and from .env', dotenv: ['DOTENV_ONLY=d'], env: { ENV_ONLY: 'e' }, base: ['environment: [ENV_ONLY, DOTENV_ONLY, NOWHERE]'] },
  // --- merge rules --------------------------------------------------------------------------
  { name: 'merge: annotations and deploy.labels (list and mapping) merged', base: ['annotations: {a: "1", b: "2"}', 'deploy: {labels: [x=1, y=2]}'], override: ['annotations: [b=3, c=4]', 'deploy: {labels: {y: "3", z: "4"}}'] },
  { name: 'merge: dns_opt, dns, dns_search, tmpfs without duplicates', base: ['dns_opt: [use-vc, ndots:2]', 'dns: 1.1.1.1', 'dns_search: [b.example, a.example]', 'tmpfs: /run'], override: ['dns_opt: [timeout:3, use-vc]', 'dns: [8.8.8.8, 1.1.1.1]', 'dns_search: a.example', 'tmpfs: [/tmp, /run]'] },
  {
    name: 'merge: build additional_contexts, tags, args and labels',
    base: ['build:', '  context: ./app', '  additional_contexts: {base: ./base, img: "docker-image://alpine:3"}', '  tags: [reg.example.com/app:1]', '  args: {A: "1", B: "2"}', '  labels: [l1=a]'],
    override: ['build:', '  additional_contexts: [extra=./extra, base=./base2]', '  tags: [reg.example.com/app:qa, reg.example.com/app:1]', '  args: [B=3, C]', '  labels: {l2: b}'],
    env: { C: 'from-env' },
  },
  {
    name: 'merge: top-level network ipam and labels',
    base: ['networks: [front]'],
    top: { networks: ['front:', '  labels: {team: shop, tier: web}', '  ipam: {driver: default, config: [{subnet: 10.5.0.0/24, gateway: 10.5.0.1}]}'] },
    overrideTop: { networks: ['front:', '  labels: [tier=edge, env=qa]', '  ipam: {options: {o: "1"}, config: [{subnet: 10.5.0.0/24, ip_range: 10.5.0.0/25}, {subnet: 10.6.0.0/24}]}'] },
  },
  { name: 'merge: extra_hosts in host:ip and host=ip forms', base: ['extra_hosts: ["db.local:10.0.0.2", "cache.local=10.0.0.3"]'], override: ['extra_hosts: ["db.local=10.0.0.2", "api.local:10.0.0.4", "v6.local=[::1]"]'] },
  { name: 'merge: env_file without duplicates, in order', base: ['env_file: [a.env, b.env]'], override: ['env_file: [b.env, a.env]'], files: { 'a.env': 'X=a\n', 'b.env': 'X=b\n' } },
  {
    name: 'merge: secrets and configs keyed by target',
    base: ['secrets: [s1, {source: s2, target: /etc/s2}]', 'configs: [c1, {source: c2, target: /etc/c2}]'],
    override: ['secrets: [{source: s3, target: /run/secrets/s1}, {source: s2, target: /etc/s2, mode: 0440}]', 'configs: [{source: c2, target: /c1}, {source: c1, target: /etc/c2}]'],
    top: { secrets: ['s1: {file: ./s1.txt}', 's2: {file: ./s2.txt}', 's3: {environment: TAG}'], configs: ['c1: {file: ./c1.txt}', 'c2: {content: "inline ${TAG}"}'] },
    files: { 's1.txt': '1', 's2.txt': '2', 'c1.txt': 'c' },
  },
  { name: 'merge: security_opt by whole value', base: ['security_opt: ["label:user:U", "seccomp:unconfined"]'], override: ['security_opt: ["label:user:V", "seccomp:unconfined", "no-new-privileges:true"]'] },
  { name: 'merge: links with aliases', base: ['links: [db, "db:database"]'], override: ['links: ["db:db2", "db:database"]'], services: ['db: {image: postgres}'] },
  {
    name: 'merge: depends_on per service, conditions kept',
    base: ['depends_on: {db: {condition: service_healthy}}'],
    override: ['depends_on: {migrate: {condition: service_completed_successfully, required: false}, db: {restart: true}, cache: {condition: service_started}}'],
    services: ['db: {image: postgres}', 'cache: {image: redis}', 'migrate: {image: m}'],
  },
  { name: 'merge: logging with another driver drops the options', base: ['logging: {driver: json-file, options: {max-size: 1m, max-file: "3"}}'], override: ['logging: {driver: syslog, options: {tag: web}}'] },
  { name: 'merge: logging with the same driver merges the options', base: ['logging: {driver: json-file, options: {max-size: 1m}}'], override: ['logging: {options: {max-file: "3"}}'] },
  {
    name: 'merge: duplicates within one file removed as Compose does',
    base: ['dns: [1.1.1.1, 8.8.8.8, 1.1.1.1]', 'volumes: ["./a:/data", "./b:/data"]', 'ports: ["8080:80", "8080:80/tcp"]', 'environment: [A=1, A=2]', 'labels: [x=1, x=2]', 'cap_add: [NET_ADMIN, NET_ADMIN]', 'expose: [80, "80"]'],
  },
  {
    name: 'merge: scalars replaced, mappings deep, a null keeps the earlier value',
    base: ['restart: always', 'user: "1000"', 'environment: {A: "1"}', 'healthcheck: {test: [CMD, a], interval: 10s}'],
    override: ['restart: unless-stopped', 'user:', 'environment:', 'healthcheck: {test: [CMD, b], timeout: 2s}'],
  },
  { name: 'merge: command and entrypoint replaced whole', base: ['command: [serve, --port, "80"]', 'entrypoint: /entry.sh'], override: ['command: serve --port "8080 x"', 'entrypoint: [/other.sh, -e]'] },
  { name: 'merge: ulimits and sysctls', base: ['ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 64}', 'sysctls: [net.core.somaxconn=1024]'], override: ['ulimits: {nofile: {soft: 4096}, core: 0}', 'sysctls: {net.ipv4.tcp_syncookies: "0"}'] },
  {
    name: 'merge: ports and volumes keyed, short and long syntax',
    base: ['ports: ["8080:80", "9000", {target: 81, published: "8081"}]', 'volumes: ["./src:/src", "data:/data", "/cache"]'],
    override: ['ports: ["127.0.0.1:8080:80", "8081:81", "9000"]', 'volumes: [{type: volume, source: data, target: /src}, "./data:/data:ro"]'],
    top: { volumes: ['data: {}'] },
  },
  {
    name: 'merge: service networks list and mapping, aliases unique',
    base: ['networks: [front, back]'],
    override: ['networks:', '  front: {aliases: [www, web]}', '  admin: {aliases: [a]}'],
    top: { networks: ['front: {}', 'back: {}', 'admin: {}'] },
  },
  // --- extends ------------------------------------------------------------------------------
  {
    name: 'extends: a base in another folder, its relative paths from there',
    base: ['extends: {file: common/base.yml, service: base}', 'environment: {OWN: "1"}'],
    files: {
      'common/base.yml': 'services:\n  base:\n    image: base:${TAG}\n    build: {context: ./ctx, args: {B: "1"}}\n    env_file: base.env\n    volumes: ["./data:/data", "named:/named"]\n    labels: [from=base]\n',
      'common/base.env': 'FROM_BASE_ENV=1\n',
    },
    top: { volumes: ['named: {}'] },
  },
  {
    name: 'extends: a chain within the file, lists and mappings merged',
    services: ['root: {image: r, environment: {A: "1"}, ports: ["80:80"], labels: [l=root]}', 'mid: {extends: root, environment: {B: "2"}, ports: ["81:81"], command: mid}'],
    base: ['extends: {service: mid}', 'environment: [A=3]', 'labels: {l: app}'],
  },
  {
    name: 'extends: a base with depends_on, volumes_from and network_mode: service',
    base: ['extends: {file: base.yml, service: base}'],
    services: ['db: {image: postgres}', 'store: {image: s}'],
    files: { 'base.yml': 'services:\n  base:\n    image: b\n    depends_on: {db: {condition: service_healthy}}\n    volumes_from: [store]\n    network_mode: "service:db"\n' },
  },
  {
    name: 'extends: across three files, the middle one overriding',
    base: ['extends: {file: one/mid.yml, service: mid}'],
    files: {
      'one/mid.yml': 'services:\n  mid:\n    extends: {file: ../two/root.yml, service: root}\n    volumes: ["./mid:/mid"]\n    environment: {M: "1"}\n',
      'two/root.yml': 'services:\n  root:\n    image: r\n    build: {context: ., additional_contexts: {x: ./x}}\n    volumes: ["./root:/root"]\n    environment: {M: "0", R: "1"}\n',
    },
  },
  { name: 'refused: extends of a service that does not exist', base: ['extends: ghost'], refused: /service 'ghost' \(named by 'extends'\) does not exist/ },
  { name: 'refused: extends in a cycle', base: ['extends: other'], services: ['other: {extends: app}'], refused: /extends itself/ },
  // --- include ------------------------------------------------------------------------------
  {
    name: 'include: short form, its own .env and paths, a local definition merged over',
    top: { include: ['- inc/compose.yml'] },
    base: ['depends_on: [lib]'],
    services: ['lib:', '  environment: {LOCAL: "1"}'],
    files: {
      'inc/.env': 'INC_VAR=from-inc-dotenv\n',
      'inc/compose.yml': 'services:\n  lib:\n    image: lib:${INC_VAR}\n    build: ./ctx\n    volumes: ["./data:/data"]\n    env_file: [lib.env]\n    secrets: [ls]\nsecrets:\n  ls: {file: ./ls.txt}\n',
      'inc/lib.env': 'L=1\n',
      'inc/ls.txt': 'x',
    },
  },
  {
    name: 'include: long form with project_directory and env_file',
    top: { include: ['- path: [lib/c.yml, lib/c.override.yml]', '  project_directory: lib/dir', '  env_file: my.env'] },
    files: {
      'my.env': 'T=from-env-file\n',
      'lib/c.yml': 'services:\n  l:\n    image: l:${T}\n    build: ctx\n',
      'lib/c.override.yml': 'services:\n  l:\n    environment: {OVER: "1"}\n    volumes: ["./v:/v"]\n',
      'lib/dir/.keep': '',
    },
  },
  { name: 'refused: include of a missing file', top: { include: ['- nope/compose.yml'] }, refused: /include\[0\]: '.*nope\/compose\.yml' does not exist/ },
  // --- !reset and !override -----------------------------------------------------------------
  {
    name: '!reset in the override file',
    base: ['ports: ["8080:80"]', 'environment: {A: "1"}', 'dns: [1.1.1.1]', 'command: echo hi', 'build: ./ctx'],
    override: ['ports: !reset []', 'environment: !reset {}', 'dns: !reset null', 'command: !reset', 'build: !reset'],
  },
  {
    name: '!override in the override file',
    base: ['ports: ["8080:80", "9000:90"]', 'labels: {x: "1"}', 'volumes: ["./a:/a"]', 'deploy: {resources: {limits: {cpus: "1"}}}'],
    override: ['ports: !override ["7000:70"]', 'labels: !override {y: "2"}', 'volumes: !override', '  - ./b:/b', 'deploy: !override {replicas: 2}'],
  },
  {
    name: '!reset and !override with extends',
    services: ['tmpl: {image: t, environment: {A: "1"}, ports: ["80:80"], dns: [x.example]}'],
    base: ['extends: tmpl', 'ports: !reset []', 'environment: !override {B: "2"}', 'dns: [y.example]'],
  },
  // --- profiles -----------------------------------------------------------------------------
  { name: 'profiles: an active profile keeps its services', services: ['tools: {image: busybox, profiles: [debug]}', 'ops: {image: busybox, profiles: [ops]}'], overrideTop: {}, profiles: ['debug'] },
  { name: 'profiles: no active profile leaves profiled services out', services: ['tools: {image: busybox, profiles: [debug]}'], profiles: [] },
  { name: 'profiles: merged across files', services: ['tools: {image: busybox, profiles: [debug]}'], override: ['profiles: [ops]'], profiles: ['ops', 'debug'] },
  { name: 'refused: depends_on a service of an inactive profile', base: ['depends_on: [tools]'], services: ['tools: {image: busybox, profiles: [debug]}'], profiles: [], refused: /'tools'.*not in an active profile/ },
  // --- anchors and merge keys ---------------------------------------------------------------
  {
    name: 'anchors: a merge key with the service overriding',
    top: { 'x-defaults: &defaults': ['restart: always', 'environment: {A: "1", B: "2"}', 'labels: [from=defaults]'] },
    base: ['<<: *defaults', 'environment: {B: "3"}'],
  },
  {
    name: 'anchors: a merge key of several anchors, aliases of values',
    top: { 'x-a: &a': ['restart: always', 'user: "1"'], 'x-b: &b': ['user: "2"', 'working_dir: /b'], 'x-ports: &ports': ['- "80:80"'] },
    base: ['<<: [*a, *b]', 'ports: *ports'],
  },
  { name: '!reset through a merge key', top: { 'x-d: &d': ['restart: always', 'user: "1"'] }, base: ['<<: *d', 'restart: !reset'] },
  // --- service keys -------------------------------------------------------------------------
  {
    name: 'ports: short forms and long form',
    base: [
      'ports:',
      '  - "80"',
      '  - "8080:80"',
      '  - "127.0.0.1:8081:81"',
      '  - "[::1]:8082:82"',
      '  - "9000-9001:9000-9001"',
      '  - "53:53/udp"',
      '  - "127.0.0.1::83"',
      '  - 84',
      '  - {target: 85, published: "8085", protocol: tcp, mode: host, host_ip: 0.0.0.0, name: web, app_protocol: http}',
      '  - {target: 86, published: 8086-8087}',
    ],
  },
  {
    name: 'volumes: short forms',
    base: ['volumes: ["./src:/src", "/abs:/abs:ro", "data:/data:nocopy", "/anon", "./z:/z:z", "../up:/up:rw", "~/home:/home-dir", "./t/:/t/"]'],
    top: { volumes: ['data: {}'] },
    env: { HOME: os.homedir() }, // `~` is the home folder of the environment given
  },
  {
    name: 'volumes: long forms bind, volume, tmpfs',
    base: [
      'volumes:',
      '  - {type: bind, source: ./src, target: /src, read_only: true, bind: {propagation: rprivate, create_host_path: true}}',
      '  - {type: bind, source: ./nocreate, target: /nc, bind: {create_host_path: false}}',
      '  - {type: volume, source: data, target: /data, volume: {nocopy: true, subpath: sub}}',
      '  - {type: volume, target: /anon}',
      '  - {type: tmpfs, target: /cache, tmpfs: {size: 10m, mode: 0755}}',
      '  - {type: tmpfs, target: /cache2, tmpfs: {size: 1048576}}',
    ],
    top: { volumes: ['data: {driver: local, driver_opts: {type: none, o: bind, device: /srv}, labels: [a=b]}'] },
  },
  {
    name: 'healthcheck: durations in every form',
    base: ['healthcheck:', '  test: curl -f http://localhost', '  interval: 1m30s', '  timeout: 1500ms', '  retries: 3', '  start_period: 0s', '  start_interval: 2h'],
    services: ['off: {image: x, healthcheck: {disable: true}}', 'none: {image: x, healthcheck: {test: [NONE]}}'],
  },
  {
    name: 'deploy: resources, restart policy, update and rollback config',
    base: [
      'deploy:',
      '  mode: replicated',
      '  replicas: 2',
      '  resources:',
      '    limits: {cpus: "0.50", memory: 50M, pids: 10}',
      '    reservations: {cpus: 0.25, memory: 20m, devices: [{capabilities: [gpu], driver: nvidia, count: all}]}',
      '  restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 120s}',
      '  update_config: {parallelism: 2, delay: 10s, order: stop-first, monitor: 1m, failure_action: rollback}',
      '  rollback_config: {parallelism: 1, delay: 0s}',
      '  placement: {constraints: [node.role==manager]}',
      '  labels: {tier: web}',
    ],
  },
  {
    name: 'sizes: mem_limit, memswap_limit, mem_reservation, shm_size in every unit',
    base: ['mem_limit: 1.5g', 'memswap_limit: 2GB', 'mem_reservation: 512', 'shm_size: 64mib', 'mem_swappiness: 60'],
    services: ['b: {image: x, mem_limit: 1024k, shm_size: "1b", memswap_limit: -1}'],
  },
  { name: 'cpus and cpu keys', base: ['cpus: 1.5', 'cpu_shares: 512', 'cpu_quota: 50000', 'cpu_period: 100000', 'cpuset: "0-1"', 'cpu_count: 2', 'cpu_percent: 50'], services: ['b: {image: x, cpus: "0.25"}'] },
  { name: 'ulimits: a single value and soft/hard', base: ['ulimits: {nproc: 65535, nofile: {soft: 20000, hard: 40000}, core: 0}'] },
  { name: 'logging: driver and options', base: ['logging: {driver: json-file, options: {max-size: 10m, max-file: "3", labels: "a,b"}}'] },
  {
    name: 'networks: aliases, ipv4_address, ipv6_address, priority, top-level options',
    base: ['networks:', '  front: {aliases: [w, web], ipv4_address: 172.16.238.10, ipv6_address: "2001:3984:3989::10", priority: 100, mac_address: "02:42:ac:11:00:03", link_local_ips: [169.254.1.1]}', '  back:', '  outside: {}'],
    top: {
      networks: [
        'front: {driver: bridge, enable_ipv6: true, ipam: {config: [{subnet: 172.16.238.0/24}, {subnet: "2001:3984:3989::/64"}]}}',
        'back: {internal: true, attachable: true, driver_opts: {com.docker.network.bridge.name: br-back}}',
        'outside: {external: true, name: corp-net}',
      ],
    },
  },
  {
    name: 'secrets and configs: short and long, top-level file, environment, external, content',
    base: ['secrets: [db_pw, {source: api_key, target: /etc/api, uid: "103", gid: "103", mode: 0400}, ext]', 'configs: [app_conf, {source: inline, target: /etc/inline.conf, mode: 0444}]'],
    top: { secrets: ['db_pw: {file: ./secrets/db.txt}', 'api_key: {environment: API_KEY}', 'ext: {external: true}'], configs: ['app_conf: {file: conf/app.conf}', 'inline: {content: "port=${TAG}"}'] },
    files: { 'secrets/db.txt': 'pw', 'conf/app.conf': 'x' },
    env: { API_KEY: 'k' },
  },
  {
    name: 'build: every common key',
    base: [
      'build:',
      '  context: ./app',
      '  dockerfile: Dockerfile.prod',
      '  args: [A=1, B]',
      '  target: prod',
      '  cache_from: [type=registry,ref=reg.example.com/cache]',
      '  cache_to: ["type=inline"]',
      '  labels: {org.example.team: shop}',
      '  additional_contexts: [base=./base, img=docker-image://alpine:3]',
      '  tags: ["reg.example.com/app:${TAG}"]',
      '  secrets: [tok, {source: tok, target: token}]',
      '  ssh: [default]',
      '  network: host',
      '  shm_size: 256m',
      '  platforms: [linux/amd64, linux/arm64]',
      '  extra_hosts: ["h:1.2.3.4"]',
      '  no_cache: true',
      '  pull: true',
    ],
    top: { secrets: ['tok: {file: ./tok.txt}'] },
    files: { 'tok.txt': 't' },
    env: { B: 'from-env' },
  },
  { name: 'build: a path alone, and dockerfile_inline', base: ['build: ./ctx'], services: ['inline: {build: {dockerfile_inline: "FROM scratch"}}'] },
  {
    name: 'command and entrypoint: strings with quotes and lists',
    base: ['command: sh -c "echo \'a b\' && echo \\"c d\\""', 'entrypoint: ["/bin/tini", "--"]'],
    services: ['b: {image: x, command: [a, "b c"], entrypoint: /entry.sh --flag=x}', 'c: {image: x, command: "", entrypoint: []}'],
  },
  { name: 'devices: short and long', base: ['devices: ["/dev/fuse:/dev/fuse:rwm", "/dev/sda", "/dev/a:/dev/b", {source: /dev/c, target: /dev/d, permissions: r}]'] },
  { name: 'sysctls: list and mapping', base: ['sysctls: [net.core.somaxconn=1024, net.ipv4.ip_forward=1]'], services: ['b: {image: x, sysctls: {net.core.somaxconn: 2048}}'] },
  { name: 'tmpfs: a string and a list with options', base: ['tmpfs: /run'], services: ['b: {image: x, tmpfs: ["/tmp:size=64m,mode=1777", /var/cache]}'] },
  {
    name: 'process keys: user, working_dir, restart, stop_grace_period, stop_signal, init, read_only',
    base: ['user: "1000:1000"', 'working_dir: /app', 'restart: on-failure:3', 'stop_grace_period: 1m30s', 'stop_signal: SIGUSR1', 'init: true', 'read_only: true'],
    services: ['b: {image: x, stop_grace_period: 1d, init: false, read_only: false, restart: "no"}'],
  },
  { name: 'cap_add, cap_drop, labels, annotations', base: ['cap_add: [NET_ADMIN, SYS_TIME]', 'cap_drop: [ALL]', 'labels: {com.example.a: "1", "com.example.b": ""}', 'annotations: [x=y, z]'] },
  { name: 'extra_hosts and dns in every form', base: ['extra_hosts: {a.local: 1.1.1.1, b.local: ["2.2.2.2", "::2"]}', 'dns: [8.8.8.8]', 'dns_search: example.com', 'dns_opt: [use-vc]'], services: ['b: {image: x, extra_hosts: ["c.local=3.3.3.3", "d.local:[::4]"]}'] },
  {
    name: 'more container keys',
    base: [
      'hostname: h',
      'domainname: d.example',
      'container_name: app-1',
      'platform: linux/amd64',
      'pull_policy: if_not_present',
      'tty: true',
      'stdin_open: true',
      'privileged: false',
      'ipc: shareable',
      'pid: host',
      'group_add: [mail, "42"]',
      'oom_score_adj: -500',
      'pids_limit: 100',
      'userns_mode: host',
      'mac_address: "02:42:ac:11:00:02"',
      'storage_opt: {size: 1G}',
      'runtime: runc',
      'cgroup: private',
      'oom_kill_disable: true',
      'scale: 1',
    ],
  },
  {
    name: 'blkio_config',
    base: ['blkio_config:', '  weight: 300', '  weight_device: [{path: /dev/sda, weight: 400}]', '  device_read_bps: [{path: /dev/sda, rate: 12mb}]', '  device_write_bps: [{path: /dev/sda, rate: "1024k"}]', '  device_read_iops: [{path: /dev/sda, rate: 120}]', '  device_write_iops: [{path: /dev/sda, rate: 30}]'],
  },
  { name: 'gpus: all and a list', base: ['gpus: all'], services: ['b: {image: x, gpus: [{driver: nvidia, count: 2, capabilities: [gpu]}, {device_ids: ["0"], capabilities: [gpu, utility]}]}'] },
  { name: 'network_mode: host, none, service', base: ['network_mode: host'], services: ['b: {image: x, network_mode: none}', 'c: {image: x, network_mode: "service:b"}', 'd: {image: x, ipc: "service:b", pid: "service:b"}'] },
  { name: 'depends_on: long form with restart and required', base: ['depends_on: {db: {condition: service_healthy, restart: true}, opt: {condition: service_started, required: false}}'], services: ['db: {image: postgres}', 'opt: {image: o}'] },
  { name: 'expose: numbers, text and ranges', base: ['expose: [3000, "4000", 5000-5001, "6000/udp"]'] },
  { name: 'label_file: labels from files, the labels key winning', base: ['label_file: [a.labels, b.labels]', 'labels: {own: "1", shared: own}'], files: { 'a.labels': 'from_a=1\nshared=a\n', 'b.labels': 'from_b=2\n' } },
  {
    name: 'top-level: volumes and networks named, external, with labels',
    base: ['volumes: ["named:/n", "ext:/e"]', 'networks: [custom]'],
    top: { volumes: ['named: {name: my-volume, labels: {a: "1"}}', 'ext: {external: true}'], networks: ['custom: {name: my-net, labels: [b=2]}'] },
  },
  { name: 'x-* extensions at the top level and in services', top: { 'x-common': ['a: 1', 'nested: {k: v}'] }, base: ['x-own: {any: thing}'], overrideTop: { 'x-common': ['nested: {l: w}'] } },
  { name: 'the obsolete version key', top: { version: [] }, alone: true },
  // --- refused ------------------------------------------------------------------------------
  { name: 'refused: an unknown service key', base: ['enviroment: {A: "1"}'], refused: /'enviroment'/ },
  { name: 'refused: an unknown top-level key', top: { servicez: ['a: {image: x}'] }, refused: /'servicez'/ },
  { name: 'refused: a value of the wrong type', base: ['environment: {A: [1, 2]}'], refused: /environment\.A/ },
  { name: 'refused: an invalid size', base: ['mem_limit: 64x'], refused: /mem_limit.*'64x'/ },
  { name: 'refused: an invalid duration', base: ['stop_grace_period: 10q'], refused: /stop_grace_period.*'10q'/ },
  { name: 'refused: cpus and deploy limits that differ', base: ['cpus: 0.5', 'deploy: {resources: {limits: {cpus: "1"}}}'], refused: /'cpus' and 'deploy\.resources\.limits\.cpus'/ },
  { name: 'refused: mem_limit and deploy limits that differ', base: ['mem_limit: 64m', 'deploy: {resources: {limits: {memory: 32m}}}'], refused: /'mem_limit' and 'deploy\.resources\.limits\.memory'/ },
  { name: 'refused: network_mode with networks', base: ['network_mode: host', 'networks: [default]'], refused: /network_mode.*networks/ },
  { name: 'refused: an undeclared network', base: ['networks: [ghost]'], refused: /network 'ghost' is not declared/ },
  { name: 'refused: an undeclared volume', base: ['volumes: ["ghost:/g"]'], refused: /volume 'ghost' is not declared/ },
  { name: 'refused: an undeclared secret', base: ['secrets: [ghost]'], refused: /secret 'ghost' is not declared/ },
  { name: 'refused: a healthcheck test without CMD, CMD-SHELL or NONE', base: ['healthcheck: {test: [curl, x]}'], refused: /healthcheck\.test/ },
  { name: 'refused: a key twice in one mapping', base: ['image: a', 'image: b'], refused: /not valid YAML.*(unique|Map keys)/i },
  { name: 'refused: a service with neither image nor build', services: ['empty: {environment: {A: "1"}}'], refused: /'empty'.*neither an image nor a build/ },
  { name: 'refused: tmpfs and a volume at the same path', base: ['tmpfs: [/a]', 'volumes: ["/a"]'], refused: /\/a.*mounted twice|already mounted/ },
  { name: 'refused: depends_on an undefined service', base: ['depends_on: [ghost]'], refused: /service 'ghost' in 'depends_on', which is not defined/ },
  { name: 'refused: a port that is not a number', base: ['ports: ["abc"]'], refused: /port.*'abc'/ },
  { name: 'refused: a secret with neither file nor environment', base: ['secrets: [s]'], top: { secrets: ['s: {}'] }, refused: /secret 's'.*file.*environment/ },
  { name: 'refused: container_name with several replicas', base: ['container_name: one', 'deploy: {replicas: 2}'], refused: /container_name/ },
];

// ---------------------------------------------------------------------------------------------
// Projects

const SCAFFOLD_DOTENV = ['# the project .env', 'TAG=1.25', "DOTENV_VAR='single quoted'"];
const SIDE_ENV = 'SIDE=1\nFROM_SIDE_FILE="quoted # not a comment" # a comment\nSIDE_REF=${TAG}\n';

/** The top-level keys a feature's lines set (lines without indentation), to tell which features can be combined. */
function keysOf(f: Feature): Set<string> {
  const first = (ls: string[] = [], prefix: string) => ls.filter((l) => /^[^\s-]/.test(l)).map((l) => `${prefix}${l.split(':')[0]}`);
  return new Set([
    ...first(f.base, 'app.'),
    ...first(f.override, 'override.'),
    ...first(f.services, 'services.'),
    ...Object.keys(f.top ?? {}).map((k) => `top.${k.split(':')[0]}`),
    ...Object.keys(f.overrideTop ?? {}).map((k) => `otop.${k.split(':')[0]}`),
    ...Object.keys(f.files ?? {}).map((k) => `file.${k}`),
  ]);
}

const indent = (n: number, ls: string[]) => ls.map((l) => `${' '.repeat(n)}${l}`);

function sections(features: Feature[], pick: (f: Feature) => Record<string, string[]> | undefined): string[] {
  const merged = new Map<string, string[]>();
  for (const f of features) for (const [header, ls] of Object.entries(pick(f) ?? {})) merged.set(header, [...(merged.get(header) ?? []), ...ls]);
  return [...merged].flatMap(([header, ls]) => (ls.length === 0 && !header.includes(':') ? [`${header}: "3.8"`] : [header.includes(':') ? header : `${header}:`, ...indent(2, ls)]));
}

/** One project from one or more features (their keys do not overlap). */
function project(name: string, features: Feature[]): ComposeProject {
  const base = features.flatMap((f) => f.base ?? []);
  const setsImage = base.some((l) => /^(image|extends):/.test(l));
  const override = features.flatMap((f) => f.override ?? []);
  const anchors = (f: Feature) => Object.fromEntries(Object.entries(f.top ?? {}).filter(([h]) => h.startsWith('x-')));
  const others = (f: Feature) => Object.fromEntries(Object.entries(f.top ?? {}).filter(([h]) => !h.startsWith('x-')));
  const compose = [
    ...sections(features, anchors), // before the services, which use their anchors
    'services:',
    '  app:',
    ...indent(4, [...(setsImage ? [] : ['image: "${IMAGE:-nginx}:${TAG}"']), ...base]),
    ...indent(2, features.flatMap((f) => f.services ?? [])),
    ...sections(features, others),
  ];
  const overrideFile = [
    'services:',
    ...(override.length > 0 ? ['  app:', ...indent(4, override)] : []),
    '  sidecar:',
    '    image: "busybox:${TAG}"',
    '    env_file: [side.env]',
    '    environment: ["FROM_DOTENV=${DOTENV_VAR}", SIDE=from-environment]',
    ...sections(features, (f) => f.overrideTop),
  ];
  const env = Object.assign({}, ...features.map((f) => f.env ?? {})) as Record<string, string>;
  const profiles = features.find((f) => f.profiles)?.profiles;
  return {
    name,
    compose: ['compose.yml', 'compose.override.yml'],
    files: {
      '.env': `${[...SCAFFOLD_DOTENV, ...features.flatMap((f) => f.dotenv ?? [])].join('\n')}\n`,
      'side.env': SIDE_ENV,
      'compose.yml': `${compose.join('\n')}\n`,
      'compose.override.yml': `${overrideFile.join('\n')}\n`,
      ...Object.assign({}, ...features.map((f) => f.files ?? {})),
    },
    env,
    profiles,
    refused: features.find((f) => f.refused)?.refused,
  };
}

/** Features combined a few at a time (every one of them in some combination): those that set different keys, are accepted and do not ask to run alone. */
function combinations(): ComposeProject[] {
  const combinable = FEATURES.filter((f) => !f.refused && !f.alone && !f.profiles);
  const out: ComposeProject[] = [];
  for (const stride of [5, 11]) {
    for (let start = 0; start < combinable.length; start += 4) {
      const group: Feature[] = [];
      const taken = new Set<string>();
      const envTaken = new Set<string>();
      for (let k = 0; k < combinable.length && group.length < 4; k++) {
        const f = combinable[(start + k * stride) % combinable.length];
        const keys = keysOf(f);
        const envKeys = Object.keys(f.env ?? {});
        if (group.includes(f) || [...keys].some((x) => taken.has(x)) || envKeys.some((x) => envTaken.has(x))) continue;
        group.push(f);
        keys.forEach((x) => taken.add(x));
        envKeys.forEach((x) => envTaken.add(x));
      }
      out.push(project(`mix ${group.map((f) => f.name.split(':')[0]).join(' + ')}`, group));
    }
  }
  return out;
}

const PROJECTS: ComposeProject[] = [...FEATURES.map((f) => project(f.name, [f])), ...combinations()];

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-v2corpus-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));
const dirs = PROJECTS.map((p, i) => writeProject(work, p, i));
let oracles: Oracle[] = [];

describe('the corpus agrees with Compose v2 (`docker compose config`)', () => {
  before(async () => {
    const binary = await composeV2Binary();
    oracles = await pool(PROJECTS, 3, (p, i) => composeConfig(binary, dirs[i], p.compose, p.env ?? {}, p.profiles));
  });

  test('the corpus has at least 80 projects, refused ones among them', () => {
    assert.ok(PROJECTS.length >= 80, `${PROJECTS.length} projects`);
    assert.ok(PROJECTS.filter((p) => p.refused).length >= 20, 'refused projects');
  });

  PROJECTS.forEach((p, i) => test(p.name, () => assertAgreesWithCompose(p, dirs[i], oracles[i])));
});

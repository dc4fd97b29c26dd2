// What a compose project runs, for the drift report: every container labelled with the project
// (Compose's one-off `run` containers included), and every other container attached to one of the
// project's networks, read through the Engine API.
//
// Telling ComposeDeploy's own containers apart: ComposeDeploy starts containers only through
// `compose up` of the file it rendered, `<project>.compose.yml` (or `<project>.rollback.compose.yml`
// after a rollback). Compose (v1 and v2) labels what it creates with `com.docker.compose.config-hash`,
// `com.docker.compose.container-number` and `com.docker.compose.project.config_files` (the files it
// was given). A container without those labels (a `docker run --label com.docker.compose.project=…`),
// a one-off container, or one Compose created from other files was started by hand.
import * as path from 'node:path';
import type Dockerode from 'dockerode';
import { unlessMissing } from '../docker/missing';
import { PROJECT_LABEL, SERVICE_LABEL } from '../compose/containers';
import { renderedFileNames } from '../compose-deploy/rendered-file';
import { parseReference, repositoryName } from '../reference';
import type { RunningContainer } from './drift';

const ONEOFF_LABEL = 'com.docker.compose.oneoff';
const CONFIG_HASH_LABEL = 'com.docker.compose.config-hash';
const NUMBER_LABEL = 'com.docker.compose.container-number';
const CONFIG_FILES_LABEL = 'com.docker.compose.project.config_files';

/** Why a container of the project was not started by ComposeDeploy, or undefined when it was. */
export function composeStartedByHand(labels: Record<string, string>, project: string): string | undefined {
  if (labels[ONEOFF_LABEL] === 'True') return 'it is a one-off container (docker compose run)';
  const missing = [CONFIG_HASH_LABEL, NUMBER_LABEL, CONFIG_FILES_LABEL].filter((l) => !labels[l]);
  if (missing.length) return `it carries the project's labels but not those Compose gives the containers it creates (${missing.join(', ')})`;
  const files = labels[CONFIG_FILES_LABEL].split(',').map((f) => path.basename(f.trim()));
  const rendered = renderedFileNames(project);
  if (files.length !== 1 || !rendered.includes(files[0])) return `Compose created it from ${labels[CONFIG_FILES_LABEL]}, not from the file ComposeDeploy rendered (${rendered[0]})`;
  return undefined;
}

/** The repository and registry digest a container runs: its image's RepoDigests for the repository it was created from. */
async function runningImage(docker: Dockerode, info: Dockerode.ContainerInspectInfo, cache: Map<string, string[]>): Promise<{ repository?: string; digest?: string }> {
  let ref;
  try {
    ref = parseReference(info.Config.Image);
  } catch {
    return {}; // created from an image id
  }
  const repository = repositoryName(ref);
  let repoDigests = cache.get(info.Image);
  if (!repoDigests) {
    repoDigests = await docker
      .getImage(info.Image)
      .inspect()
      .then((i) => i.RepoDigests ?? [])
      .catch(() => []);
    cache.set(info.Image, repoDigests);
  }
  const digests = repoDigests.flatMap((rd) => {
    try {
      const r = parseReference(rd);
      return r.digest && repositoryName(r) === repository ? [r.digest] : [];
    } catch {
      return [];
    }
  });
  // The digest the deploy pinned, when the image was pulled by it; else what the image was pulled by.
  return { repository, digest: ref.digest && digests.includes(ref.digest) ? ref.digest : digests[0] };
}

function stateOf(info: Dockerode.ContainerInspectInfo): { state: string; down?: string } {
  const s = info.State;
  const health = s.Health?.Status;
  const state = `${s.Status}${health ? ` (${health})` : ''}${s.Status === 'exited' ? ` ${s.ExitCode}` : ''}`;
  if (s.Status === 'exited' && s.ExitCode === 0) return { state }; // a one-shot service that finished
  if (s.Status !== 'running') return { state, down: `it is ${state}` };
  if (health === 'unhealthy') return { state, down: 'its healthcheck fails' };
  return { state };
}

/** The containers of the project and those attached to its networks, as the drift report compares them. */
export async function readComposeProjectForDrift(docker: Dockerode, project: string): Promise<RunningContainer[]> {
  const listed = await docker.listContainers({ all: true, filters: { label: [`${PROJECT_LABEL}=${project}`] } });
  const ids = new Set(listed.map((c) => c.Id));
  const networks = await docker.listNetworks({ filters: { label: [`${PROJECT_LABEL}=${project}`] } });
  const strangers: string[] = [];
  for (const n of networks) {
    const attached = (await docker.getNetwork(n.Id).inspect()) as { Containers?: Record<string, unknown> };
    for (const id of Object.keys(attached.Containers ?? {})) if (!ids.has(id) && !strangers.includes(id)) strangers.push(id);
  }
  const images = new Map<string, string[]>();
  const out: RunningContainer[] = [];
  for (const id of [...ids, ...strangers]) {
    const info = await unlessMissing(docker.getContainer(id).inspect());
    if (!info) continue; // removed meanwhile
    const labels = info.Config.Labels ?? {};
    const mine = ids.has(id);
    const { state, down } = stateOf(info);
    out.push({
      service: mine ? labels[SERVICE_LABEL] : undefined,
      name: info.Name.replace(/^\//, ''),
      ...(await runningImage(docker, info, images)),
      restarts: info.RestartCount ?? 0,
      state,
      down,
      byHand: mine ? composeStartedByHand(labels, project) : `it is attached to the project's network but is not a container of project '${project}'`,
    });
  }
  return out;
}

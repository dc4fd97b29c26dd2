// The release inputs both deploy tasks take, with one meaning: the promotion diff's gate (diff.ts),
// the bake window (bake.ts) and the notification (notify.ts).
import type { NotifySettings } from './notify';

export interface ReleaseOptions {
  /** Print the promotion diff and deploy nothing. */
  diffOnly: boolean;
  /** Deploy a release that changes nothing; false skips it. */
  deployIfUnchanged: boolean;
  /** How long the release is watched once it runs (0: not at all). */
  bakeSeconds: number;
  /** Must answer 2xx once the release runs, and through the bake window. */
  smokeTestUrl?: string;
  /** The webhook told how the deploy ended (notifyUrl, notifyFormat). */
  notify?: NotifySettings;
}

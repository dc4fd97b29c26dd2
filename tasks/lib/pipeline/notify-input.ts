// The notifyUrl and notifyFormat inputs both deploy tasks share.
import type { TaskContext } from '../context';
import { NOTIFY_FORMATS, NotifySettings, notifySettings } from '../release/notify';
import type { TaskInputs } from './index';

export function readNotifyInputs(inputs: TaskInputs, ctx: TaskContext): NotifySettings | undefined {
  return notifySettings(inputs.string('notifyUrl'), inputs.choice('notifyFormat', NOTIFY_FORMATS), (s) => ctx.setSecret(s));
}

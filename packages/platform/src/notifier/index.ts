export {
  createLogNotifier,
  createRecordingNotifier,
  type Notification,
  type Notifier,
} from './notifier.ts';

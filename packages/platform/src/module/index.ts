export {
  type BackgroundRegistry,
  type Clock,
  type IdGenerator,
  type JobSender,
  type ServiceContext,
  type ServiceModule,
  type ServiceMountContext,
  systemClock,
} from './service-module.ts';

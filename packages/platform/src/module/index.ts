export {
  type BackgroundRegistry,
  type Clock,
  type DemoAccounts,
  type DemoSeedContext,
  type IdGenerator,
  type JobSender,
  type ServiceContext,
  type ServiceModule,
  type ServiceMountContext,
  systemClock,
} from './service-module.ts';

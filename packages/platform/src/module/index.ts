export {
  type Clock,
  type IdGenerator,
  type ServiceContext,
  type ServiceModule,
  systemClock,
} from './service-module.ts';

export {
  ConfigError,
  loadConfig,
  type PlatformConfig,
  PlatformConfigSchema,
  type ProcessRole,
  parseList,
} from './config.ts';

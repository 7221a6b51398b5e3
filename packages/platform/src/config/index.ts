export { ConfigError, loadConfig, type PlatformConfig, PlatformConfigSchema, parseList } from './config.ts';

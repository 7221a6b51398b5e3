export {
  closeRedisClient,
  createRedisClient,
  type RedisClient,
  type RedisClientOptions,
  waitForRedisReady,
} from './redis.ts';

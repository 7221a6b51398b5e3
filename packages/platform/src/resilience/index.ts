export {
  type BreakerState,
  createResilience,
  isBrokenCircuit,
  type Resilience,
  type ResilienceSettings,
} from './resilience.ts';

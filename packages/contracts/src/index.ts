// Event schemas shared between services (STYLE.md rule 3) live here, each a
// `defineEvent` contract in `<service>.events.ts`. Services import contracts,
// never each other.
export {
  defineEvent,
  EVENT_TYPE_PATTERN,
  type EventDefinition,
  type EventEnvelope,
  EventValidationError,
  type EventValidationProblem,
  envelopeSchema,
} from './envelope.ts';

import {
  DiscardPolicy,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { invalidNatsSettings, toNatsFailure } from './jetstream.errors.ts';
import {
  DEFAULT_DEAD_LETTER_STREAM_SETTINGS,
  DEFAULT_STREAM_SETTINGS,
  deadLetterStreamName,
  deadLetterSubjects,
  eventStreamName,
  type StreamSettings,
  serviceEventsSubject,
} from './jetstream.ts';

export type EnsureStreamOptions = Partial<StreamSettings> & {
  /** The producing service: `orders` owns `keel.events.orders.>` in `KEEL_EVENTS_ORDERS`. */
  service: string;
  /**
   * Bring an existing stream's limits in line with these settings (default
   * true). Consumers pass false: only the relay's settings should decide
   * retention, or two processes with different defaults would flip it.
   */
  isUpdatingExisting?: boolean;
};

/** What `ensureServiceStream` made sure of. */
export type EnsuredStream = { name: string; subject: string; outcome: 'created' | 'updated' | 'unchanged' };

// JetStream API error codes (nats-server's errors.json).
const STREAM_NAME_IN_USE = 10058;

/**
 * Creates the durable event stream of one service, or brings an existing
 * one's limits in line: file storage, limits retention (`maxAgeMs`, default 7
 * days, oldest discarded first) and a `duplicateWindowMs` (default 2 minutes)
 * within which a second publish with the same `Nats-Msg-Id` is dropped.
 * Idempotent, and safe to race from several processes.
 *
 * @example
 * const jsm = await nats.manager();
 * await ensureServiceStream(jsm, { service: 'orders' }); // KEEL_EVENTS_ORDERS, keel.events.orders.>
 */
export async function ensureServiceStream(
  jsm: JetStreamManager,
  options: EnsureStreamOptions,
): Promise<EnsuredStream> {
  return ensureStream(
    jsm,
    eventStreamName(options.service),
    serviceEventsSubject(options.service),
    { ...DEFAULT_STREAM_SETTINGS, ...definedSettings(options) },
    options.isUpdatingExisting ?? true,
  );
}

/**
 * The stream a service's consumers dead-letter into: `KEEL_DEAD_<SERVICE>`
 * holding `keel.dead.<service>.>`, kept 30 days by default.
 *
 * @example
 * await ensureDeadLetterStream(jsm, { service: 'orders' });
 */
export async function ensureDeadLetterStream(
  jsm: JetStreamManager,
  options: EnsureStreamOptions,
): Promise<EnsuredStream> {
  return ensureStream(
    jsm,
    deadLetterStreamName(options.service),
    deadLetterSubjects(options.service),
    { ...DEFAULT_DEAD_LETTER_STREAM_SETTINGS, ...definedSettings(options) },
    options.isUpdatingExisting ?? true,
  );
}

async function ensureStream(
  jsm: JetStreamManager,
  name: string,
  subject: string,
  settings: StreamSettings,
  isUpdatingExisting: boolean,
): Promise<EnsuredStream> {
  if (settings.duplicateWindowMs > settings.maxAgeMs) {
    throw invalidNatsSettings(`Stream ${name}: the duplicate window cannot exceed the max age`);
  }
  const wanted = {
    subjects: [subject],
    max_age: nanos(settings.maxAgeMs),
    duplicate_window: nanos(settings.duplicateWindowMs),
    num_replicas: settings.replicas,
    discard: DiscardPolicy.Old,
  } satisfies Partial<StreamConfig>;
  try {
    const existing = await findStreamConfig(jsm, name);
    if (existing === undefined) {
      try {
        await jsm.streams.add({
          name,
          ...wanted,
          storage: StorageType.File,
          retention: RetentionPolicy.Limits,
        });
        return { name, subject, outcome: 'created' };
      } catch (error) {
        // Another process created it between our lookup and our add.
        if (apiErrorCode(error) !== STREAM_NAME_IN_USE) throw error;
      }
    } else if (!isUpdatingExisting || isSameLimits(existing, wanted)) {
      return { name, subject, outcome: 'unchanged' };
    }
    await jsm.streams.update(name, wanted);
    return { name, subject, outcome: 'updated' };
  } catch (error) {
    throw toNatsFailure(error, `ensure stream ${name}`);
  }
}

async function findStreamConfig(jsm: JetStreamManager, name: string): Promise<StreamConfig | undefined> {
  try {
    return (await jsm.streams.info(name)).config;
  } catch (error) {
    if (error instanceof Error && error.name === 'StreamNotFoundError') return undefined;
    throw error;
  }
}

function isSameLimits(existing: StreamConfig, wanted: Partial<StreamConfig>): boolean {
  return (
    existing.subjects?.length === 1 &&
    existing.subjects[0] === wanted.subjects?.[0] &&
    existing.max_age === wanted.max_age &&
    existing.duplicate_window === wanted.duplicate_window &&
    existing.num_replicas === wanted.num_replicas &&
    existing.discard === wanted.discard
  );
}

function definedSettings(options: Partial<StreamSettings>): Partial<StreamSettings> {
  const settings: Partial<StreamSettings> = {};
  if (options.maxAgeMs !== undefined) settings.maxAgeMs = options.maxAgeMs;
  if (options.duplicateWindowMs !== undefined) settings.duplicateWindowMs = options.duplicateWindowMs;
  if (options.replicas !== undefined) settings.replicas = options.replicas;
  return settings;
}

const API_ERROR_NAMES = new Set(['JetStreamApiError', 'StreamNotFoundError', 'ConsumerNotFoundError']);

/** The JetStream API error code (`10058`), or undefined for any other failure. */
export function apiErrorCode(error: unknown): number | undefined {
  if (!(error instanceof Error) || !API_ERROR_NAMES.has(error.name)) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

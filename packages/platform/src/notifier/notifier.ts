import type { Logger } from '../observability/index.ts';

/**
 * A message to a person. `secrets` holds what must never reach a log in
 * production (a reset token, a one-time link); `data` is safe to log.
 */
export type Notification = {
  to: string;
  template: string;
  data: Record<string, string | number | boolean>;
  secrets?: Record<string, string>;
};

/** The adapter every channel (email, SMS, SNS) implements. */
export type Notifier = { send(notification: Notification): Promise<void> };

/**
 * The development notifier: writes each notification to the log. With
 * `isRevealingSecrets` (NODE_ENV=development only) the secrets are logged so a
 * developer can follow a reset link; otherwise they are replaced by their names.
 *
 * @example
 * const notifier = createLogNotifier({ logger, isRevealingSecrets: config.NODE_ENV === 'development' });
 * await notifier.send({ to: email, template: 'password_reset', data: {}, secrets: { resetToken } });
 */
export function createLogNotifier(options: { logger: Logger; isRevealingSecrets: boolean }): Notifier {
  return {
    async send(notification) {
      const secretNames = Object.keys(notification.secrets ?? {});
      // `notification` is a log key pino does not redact, on purpose: the
      // secrets are either withheld here or deliberately shown in development.
      options.logger.info(
        {
          notification: {
            to: notification.to,
            template: notification.template,
            data: notification.data,
            ...(options.isRevealingSecrets
              ? { developmentOnlySecrets: notification.secrets ?? {} }
              : { withheldSecrets: secretNames }),
          },
        },
        'notification (log notifier)',
      );
    },
  };
}

/** A notifier that keeps what it was sent; for tests that need the reset token. */
export function createRecordingNotifier(): Notifier & { sent: Notification[] } {
  const sent: Notification[] = [];
  return {
    sent,
    async send(notification) {
      sent.push(notification);
    },
  };
}

import { describe, expect, it } from 'vitest';
import { checkWebhookUrl, judgeResponseStatus, toWebhookBody } from './webhook.ts';

describe('checkWebhookUrl', () => {
  const production = { isProduction: true };
  const development = { isProduction: false };

  it('accepts public https URLs everywhere', () => {
    expect(checkWebhookUrl('https://hooks.example.com/orders?x=1', production)).toEqual({
      url: 'https://hooks.example.com/orders?x=1',
    });
  });

  it('accepts http only for loopback hosts outside production', () => {
    expect(checkWebhookUrl('http://127.0.0.1:4567/hook', development)).toEqual({
      url: 'http://127.0.0.1:4567/hook',
    });
    expect(checkWebhookUrl('http://[::1]:4567/hook', development)).toHaveProperty('url');
    expect(checkWebhookUrl('http://localhost/hook', development)).toHaveProperty('url');
    expect(checkWebhookUrl('http://hooks.example.com/', development)).toHaveProperty('problem');
    expect(checkWebhookUrl('http://127.0.0.1:4567/hook', production)).toEqual({
      problem: 'url must use https',
    });
  });

  it('refuses internal addresses in production', () => {
    for (const url of [
      'https://127.0.0.1/',
      'https://10.1.2.3/',
      'https://172.16.0.1/',
      'https://192.168.1.1/',
      'https://169.254.169.254/latest/meta-data',
      'https://[::1]/',
      'https://[fd00::1]/',
      'https://[::ffff:10.0.0.1]/',
      'https://localhost/',
      'https://api.localhost/',
    ]) {
      expect(checkWebhookUrl(url, production), url).toHaveProperty('problem');
    }
    expect(checkWebhookUrl('https://10.1.2.3/', development)).toHaveProperty('url');
  });

  it('refuses other schemes, credentials, fragments and garbage', () => {
    for (const url of [
      'ftp://example.com/',
      'https://user:pw@example.com/',
      'https://example.com/#x',
      'not a url',
    ]) {
      expect(checkWebhookUrl(url, development), url).toHaveProperty('problem');
    }
  });
});

describe('judgeResponseStatus', () => {
  it('delivers on 2xx, retries 408, 429 and 5xx, gives up on the rest', () => {
    expect([200, 202, 204].map(judgeResponseStatus)).toEqual(['delivered', 'delivered', 'delivered']);
    expect([408, 429, 500, 502, 503].map(judgeResponseStatus)).toEqual(Array(5).fill('retryable'));
    expect([301, 302, 400, 401, 404, 410, 422].map(judgeResponseStatus)).toEqual(Array(7).fill('permanent'));
  });
});

describe('toWebhookBody', () => {
  it('sends the envelope without the internal trace context', () => {
    const body = toWebhookBody({
      id: '0190a0a0-0000-7000-8000-000000000001',
      type: 'orders.order_placed.v1',
      aggregateType: 'order',
      aggregateId: 'a',
      occurredAt: '2030-01-01T10:00:00.000Z',
      schemaVersion: 1,
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      payload: { totalMinor: 1 },
    });
    expect(JSON.parse(body)).toEqual({
      id: '0190a0a0-0000-7000-8000-000000000001',
      type: 'orders.order_placed.v1',
      occurredAt: '2030-01-01T10:00:00.000Z',
      schemaVersion: 1,
      aggregateType: 'order',
      aggregateId: 'a',
      payload: { totalMinor: 1 },
    });
  });
});

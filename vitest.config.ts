import { defineConfig } from 'vitest/config';

const sources = ['apps/*/src/**/*.ts', 'packages/*/src/**/*.ts', 'services/*/src/**/*.ts'];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{apps,packages,services}/*/src/**/*.test.ts'],
          exclude: ['**/*.db.test.ts', '**/node_modules/**'],
        },
      },
      {
        test: {
          name: 'database',
          include: [
            '{apps,packages,services}/*/src/**/*.db.test.ts',
            '{apps,packages,services}/*/test/**/*.test.ts',
          ],
          exclude: ['**/node_modules/**'],
          globalSetup: ['./test/global-setup.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
    coverage: {
      provider: 'v8',
      include: sources,
      exclude: ['**/*.test.ts', '**/index.ts', 'apps/server/src/main.ts'],
      thresholds: { lines: 80 },
      reporter: ['text-summary', 'json-summary'],
    },
  },
});

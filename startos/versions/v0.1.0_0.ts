/**
 * The first packaged version. Nothing to migrate from.
 */
import { IMPOSSIBLE, VersionInfo } from '@start9labs/start-sdk'

export const v0_1_0_0 = VersionInfo.of({
  version: '0.1.0:0',
  releaseNotes: {
    en_US: 'First release of the Spark Control package.',
    de_DE: 'Erste Version des Spark-Control-Pakets.',
  },
  migrations: {
    up: async () => {},
    down: IMPOSSIBLE,
  },
})

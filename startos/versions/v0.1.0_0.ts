/**
 * The first packaged version. Nothing to migrate from.
 */
import { IMPOSSIBLE, VersionInfo } from '@start9labs/start-sdk'

export const v0_1_0_0 = VersionInfo.of({
  version: '0.1.0:0',
  releaseNotes: 'First release of the Spark Control package.',
  migrations: {
    up: async () => {},
    down: IMPOSSIBLE,
  },
})

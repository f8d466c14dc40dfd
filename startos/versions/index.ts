/**
 * The version graph. Add each new version file to `other` and make the newest
 * one `current`.
 */
import { VersionGraph } from '@start9labs/start-sdk'
import { v0_1_0_0 } from './v0.1.0_0'

export const versionGraph = VersionGraph.of({
  current: v0_1_0_0,
  other: [],
})

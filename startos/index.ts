/**
 * Package entry point: the exports StartOS loads from javascript/index.js.
 */
import { buildManifest } from '@start9labs/start-sdk'
import { manifest as sdkManifest } from './manifest'
import { versionGraph } from './versions'

export const manifest = buildManifest(versionGraph, sdkManifest)
export { createBackup } from './backups'
export { main } from './main'
export { init, uninit } from './init'
export { actions } from './actions'

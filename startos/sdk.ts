/**
 * The SDK instance bound to our manifest. Every other file imports `sdk` from
 * here; nothing else constructs one.
 */
import { StartSdk } from '@start9labs/start-sdk'
import { manifest } from './manifest'

export const sdk = StartSdk.of().withManifest(manifest).build(true)

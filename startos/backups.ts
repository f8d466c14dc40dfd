/**
 * Backups: the whole `main` volume (desired.yaml, the SSH key, known_hosts,
 * the event log). It is small; model weights live on the Sparks, not here.
 */
import { sdk } from './sdk'

export const { createBackup, restoreInit } = sdk.setupBackups(async () =>
  sdk.Backups.ofVolumes('main'),
)

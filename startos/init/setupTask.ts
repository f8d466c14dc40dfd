/**
 * On a fresh install, put "Configure Sparks" on the user's task list. It is
 * 'important', not 'critical': the service must be able to start unconfigured
 * (it writes its starting desired.yaml on first start, and the Configure
 * action needs it running).
 */
import { configureSparks } from '../actions/configureSparks'
import { i18n } from '../i18n'
import { sdk } from '../sdk'

export const setupTask = sdk.setupOnInit(async (effects, kind) => {
  if (kind !== 'install') return
  await sdk.action.createOwnTask(effects, configureSparks, 'important', {
    reason: i18n(
      'Tell Spark Control where your two Sparks are. First run "Show Public Key" and add the key to ~/.ssh/authorized_keys on both Sparks.',
    ),
  })
})

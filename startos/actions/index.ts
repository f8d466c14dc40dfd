/**
 * The actions shown on the service page, in display order.
 */
import { sdk } from '../sdk'
import { configureSparks } from './configureSparks'
import { showPublicKey } from './showPublicKey'

export const actions = sdk.Actions.of()
  .addAction(showPublicKey)
  .addAction(configureSparks)

/**
 * spark-control depends on no other StartOS service: it reaches the Sparks
 * over the LAN by SSH and HTTP.
 */
import { sdk } from './sdk'

export const setDependencies = sdk.setupDependencies(async () => ({}))

/**
 * What the service exposes: one HTTP port (9999) carrying the web UI and, on
 * the same origin, the OpenAI-compatible `/v1` API for LAN clients.
 */
import { i18n } from './i18n'
import { sdk } from './sdk'
import { uiPort } from './utils'

export const setInterfaces = sdk.setupInterfaces(async ({ effects }) => {
  const host = sdk.MultiHost.of(effects, 'main')
  const origin = await host.bindPort(uiPort, {
    protocol: 'http',
    preferredExternalPort: uiPort,
  })

  const ui = sdk.createInterface(effects, {
    name: i18n('Web UI'),
    id: 'ui',
    description: i18n(
      'Status, plan and settings for the Sparks: active model, model overrides, service placement, launcher updates',
    ),
    type: 'ui',
    masked: false,
    schemeOverride: null,
    username: null,
    path: '',
    query: {},
  })

  const openai = sdk.createInterface(effects, {
    name: i18n('OpenAI-compatible API'),
    id: 'openai',
    description: i18n(
      'Base URL for OpenAI clients (e.g. Open WebUI). Requests go to the active vLLM model; audio transcription goes to Parakeet. Service discovery JSON is at /api/endpoints on the same host.',
    ),
    type: 'api',
    masked: false,
    schemeOverride: null,
    username: null,
    path: '/v1',
    query: {},
  })

  return [await origin.export([ui, openai])]
})

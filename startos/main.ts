/**
 * The service's daemons: a oneshot that hands the data volume to the image's
 * user, then `spark-control serve` on /data. Health: `/healthz` must answer
 * 200 (the process serves); `/readyz` is shown as a second, informational
 * check so an unconfigured or unreachable cluster is visible on the service
 * page without marking the service itself as failed.
 */
import { i18n } from './i18n'
import { sdk } from './sdk'
import {
  chownDataCommand,
  imageId,
  mainMounts,
  runUser,
  serveCommand,
  stopTimeoutMs,
  uiPort,
} from './utils'

type Probe = { status: number; body: string } | { error: string }

async function probe(path: string): Promise<Probe> {
  try {
    const res = await fetch(`http://127.0.0.1:${uiPort}${path}`, {
      signal: AbortSignal.timeout(3_000),
    })
    return { status: res.status, body: (await res.text()).trim() }
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) }
  }
}

const firstLine = (s: string): string => s.split('\n')[0].slice(0, 200)

export const main = sdk.setupMain(async ({ effects }) => {
  console.info(i18n('Starting Spark Control'))

  const sub = sdk.SubContainer.of(
    effects,
    { imageId },
    mainMounts,
    'spark-control',
  )

  return sdk.Daemons.of(effects)
    .addOneshot('data-owner', {
      subcontainer: sub,
      exec: { command: chownDataCommand, user: 'root' },
      requires: [],
    })
    .addDaemon('primary', {
      subcontainer: sub,
      exec: {
        command: serveCommand,
        user: runUser,
        // StartOS reaches the service by its .local and .onion names (and IPs, always
        // allowed): the Host allowlist must know them (DNS-rebinding guard).
        env: { RUST_LOG: 'info', SPARK_CONTROL_ALLOWED_HOSTS: '*.local,*.onion' },
        sigtermTimeout: stopTimeoutMs,
      },
      ready: {
        display: i18n('Web interface'),
        gracePeriod: 30_000,
        fn: async () => {
          const r = await probe('/healthz')
          if ('status' in r && r.status === 200) {
            return {
              result: 'success',
              message: i18n('Spark Control is serving the web interface'),
            }
          }
          return {
            result: 'failure',
            message:
              'status' in r
                ? i18n('/healthz answered HTTP ${status}', {
                    status: String(r.status),
                  })
                : i18n('Spark Control is not answering on port ${port}', {
                    port: String(uiPort),
                  }),
          }
        },
      },
      requires: ['data-owner'],
    })
    .addHealthCheck('cluster', {
      ready: {
        display: i18n('Sparks'),
        fn: async () => {
          const r = await probe('/readyz')
          if (!('status' in r)) {
            return { result: 'starting', message: i18n('Waiting for Spark Control') }
          }
          if (r.status === 200) {
            return { result: 'success', message: firstLine(r.body) || i18n('Ready') }
          }
          return {
            result: 'loading',
            message:
              firstLine(r.body) ||
              i18n(
                'Not ready. If this is a new install, run the "Show Public Key" and "Configure Sparks" actions.',
              ),
          }
        },
      },
      requires: ['primary'],
    })
})

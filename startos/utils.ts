/**
 * Constants shared by main, interfaces and actions, and the one helper that
 * runs a spark-control subcommand in a temporary container. Paths and the
 * command line here must match container/Dockerfile and the CLI contract.
 */
import { T } from '@start9labs/start-sdk'
import { sdk } from './sdk'

/** Port spark-control listens on inside the container. */
export const uiPort = 9999
/** Mount point of the `main` volume (spark-control's data dir). */
export const dataDir = '/data'
/** The desired-state file spark-control serves from and `configure` edits. */
export const desiredFile = `${dataDir}/desired.yaml`
/** The image id from the manifest. */
export const imageId = 'spark-control'
/** The image's non-root user (uid 1000), see container/Dockerfile. */
export const runUser = 'spark'
/** Grace period on stop: spark-control stops at a safe point on SIGTERM. */
export const stopTimeoutMs = 180_000

export const mainMounts = sdk.Mounts.of().mountVolume({
  volumeId: 'main',
  subpath: null,
  mountpoint: dataDir,
  readonly: false,
})

/** The argv that starts the daemon. */
export const serveCommand: [string, ...string[]] = [
  'spark-control',
  'serve',
  '--desired',
  desiredFile,
  '--data-dir',
  dataDir,
  '--listen',
  `0.0.0.0:${uiPort}`,
]

/** Command that gives the data volume to the image's user (run as root). */
export const chownDataCommand: [string, ...string[]] = ['chown', '-R', '1000:1000', dataDir]

export type CommandOutput = {
  exitCode: number | null
  stdout: string
  stderr: string
}

const text = (b: string | Buffer): string =>
  typeof b === 'string' ? b : b.toString('utf-8')

/**
 * Run one spark-control subcommand (argv, no shell) as the image user in a
 * temporary container with the data volume mounted. The volume is chowned
 * first, so this also works before the service has ever started.
 */
export async function runSparkControl(
  effects: T.Effects,
  name: string,
  args: string[],
  timeoutMs = 60_000,
): Promise<CommandOutput> {
  return sdk.SubContainer.withTemp(
    effects,
    { imageId },
    mainMounts,
    name,
    async (sub) => {
      await sub.execFail(chownDataCommand, { user: 'root' }, 30_000)
      const res = await sub.exec(
        ['spark-control', ...args],
        { user: runUser },
        timeoutMs,
      )
      return {
        exitCode: res.exitCode,
        stdout: text(res.stdout),
        stderr: text(res.stderr),
      }
    },
  )
}

/**
 * "Show Public Key": runs `spark-control pubkey --data-dir /data` (which
 * creates the key on first use) and shows the line, plus a ready-to-paste
 * command that appends it to ~/.ssh/authorized_keys on a Spark.
 */
import { i18n } from '../i18n'
import { sdk } from '../sdk'
import { dataDir, runSparkControl } from '../utils'

// An OpenSSH ed25519 public key line: type, base64 blob, optional comment.
// No single quote anywhere, so the line can be single-quoted for a shell.
const keyLine = /^ssh-ed25519 [A-Za-z0-9+/]+={0,2}( [^'\n]+)?$/

export const showPublicKey = sdk.Action.withoutInput(
  'show-public-key',

  async () => ({
    name: i18n('Show Public Key'),
    description: i18n(
      'Show the SSH public key Spark Control uses to log in to the Sparks. Add it to ~/.ssh/authorized_keys of the SSH user on both Sparks.',
    ),
    warning: null,
    allowedStatuses: 'any',
    group: null,
    visibility: 'enabled',
  }),

  async ({ effects }) => {
    const out = await runSparkControl(effects, 'pubkey', [
      'pubkey',
      '--data-dir',
      dataDir,
    ])
    if (out.exitCode !== 0) {
      throw new Error(
        i18n('spark-control pubkey failed (exit ${code}): ${output}', {
          code: String(out.exitCode),
          output: out.stderr.trim() || out.stdout.trim(),
        }),
      )
    }
    const line = out.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0)
      .pop()
    if (!line || !keyLine.test(line)) {
      throw new Error(
        i18n(
          'spark-control pubkey printed something that is not an ed25519 public key line: ${output}',
          { output: out.stdout.trim() },
        ),
      )
    }
    // The key line has no quote characters (checked above), so single quotes
    // are a safe wrapper for the shell on the Spark.
    const install = `mkdir -p ~/.ssh && chmod 700 ~/.ssh && grep -qxF '${line}' ~/.ssh/authorized_keys 2>/dev/null || echo '${line}' >> ~/.ssh/authorized_keys; chmod 600 ~/.ssh/authorized_keys`

    return {
      version: '1',
      title: i18n('Spark Control public key'),
      message: i18n(
        'Authorize this key on BOTH Sparks, as the SSH user you will enter in "Configure Sparks" (e.g. nvidia): log in to each Spark and run the command below, or append the key line to ~/.ssh/authorized_keys by hand. The command adds the line only once. Then run "Configure Sparks".',
      ),
      result: {
        type: 'group',
        value: [
          {
            type: 'single',
            name: i18n('Public key'),
            description: i18n('One line for ~/.ssh/authorized_keys'),
            value: line,
            copyable: true,
            qr: false,
            masked: false,
          },
          {
            type: 'single',
            name: i18n('Command to run on each Spark'),
            description: i18n(
              'Run as the SSH user on Spark 1 and on Spark 2 (not as root, unless root is that user)',
            ),
            value: install,
            copyable: true,
            qr: false,
            masked: false,
          },
        ],
      },
    }
  },
)

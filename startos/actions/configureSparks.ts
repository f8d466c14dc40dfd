/**
 * "Configure Sparks": asks for the two Sparks' addresses and SSH users and
 * where Parakeet and Magpie run, then runs `spark-control configure`, which
 * validates and makes a minimal, comment-preserving edit of desired.yaml.
 * This file never writes YAML itself; it only reads desired.yaml to pre-fill
 * the form, best effort.
 */
import { YAML } from '@start9labs/start-sdk'
import { readFile } from 'node:fs/promises'
import { i18n } from '../i18n'
import { sdk } from '../sdk'
import { desiredFile, runSparkControl } from '../utils'

const { InputSpec, Value } = sdk

// Host names are fixed: the head is spark1, the worker spark2.
const sparks = {
  spark1: i18n('Spark 1 (head)'),
  spark2: i18n('Spark 2 (worker)'),
}
type Spark = keyof typeof sparks

const addressPattern = {
  // No spaces, commas or '=': the value is passed as NAME=ADDRESS,user=USER.
  regex: '^[A-Za-z0-9][A-Za-z0-9.:-]*$',
  description: i18n(
    'An IPv4 address such as 192.168.1.101, or a host name. No spaces or commas.',
  ),
}
const userPattern = {
  regex: '^[a-z_][a-z0-9_.-]*$',
  description: i18n(
    'A Linux user name: lower-case letters, digits, "_", "." and "-", starting with a letter or "_".',
  ),
}

const address = (name: string, description: string, placeholder: string) =>
  Value.text({
    name,
    description,
    required: true,
    default: null,
    placeholder,
    patterns: [addressPattern],
  })

const user = (n: 1 | 2) =>
  Value.text({
    name: i18n('Spark ${n} SSH user', { n: String(n) }),
    description: i18n(
      'The user Spark Control logs in as on Spark ${n}. Its ~/.ssh/authorized_keys must hold the key from "Show Public Key", and it must be able to run docker.',
      { n: String(n) },
    ),
    required: true,
    default: 'nvidia',
    patterns: [userPattern],
  })

const placement = (name: string, description: string) =>
  Value.select({
    name,
    description,
    default: 'spark2',
    values: sparks,
  })

export const inputSpec = InputSpec.of({
  spark1Address: address(
    i18n('Spark 1 address'),
    i18n(
      'The head node: runs launch-cluster.sh and serves the model on port 8888. Use the IPv4 address: a mDNS ".local" name may resolve to IPv6 first while vLLM listens on IPv4 only; the validator warns about it.',
    ),
    '192.168.1.101',
  ),
  spark1User: user(1),
  spark2Address: address(
    i18n('Spark 2 address'),
    i18n(
      'The worker node for tensor-parallel cluster models. Use the IPv4 address: a mDNS ".local" name may resolve to IPv6 first while vLLM listens on IPv4 only; the validator warns about it.',
    ),
    '192.168.1.102',
  ),
  spark2User: user(2),
  parakeetHost: placement(
    i18n('Parakeet (speech-to-text, port 8000) runs on'),
    i18n('Which Spark runs the Parakeet container.'),
  ),
  magpieHost: placement(
    i18n('Magpie (text-to-speech, port 9000) runs on'),
    i18n('Which Spark runs the Magpie container.'),
  ),
})

type Form = {
  spark1Address: string
  spark1User: string
  spark2Address: string
  spark2User: string
  parakeetHost: Spark
  magpieHost: Spark
}

/** The argv for `spark-control configure`, without the program name. */
export function configureArgs(input: Form): string[] {
  return [
    'configure',
    '--desired',
    desiredFile,
    '--host',
    `spark1=${input.spark1Address.trim()},user=${input.spark1User.trim()}`,
    '--host',
    `spark2=${input.spark2Address.trim()},user=${input.spark2User.trim()}`,
    '--head',
    'spark1',
    '--workers',
    'spark2',
    '--service',
    `parakeet=${input.parakeetHost}`,
    '--service',
    `magpie=${input.magpieHost}`,
  ]
}

// Best-effort read of the current values for the form. Any surprise in the
// file (missing, invalid, a shape this code does not know) means no pre-fill.
async function currentValues(): Promise<Partial<Form>> {
  try {
    const doc: unknown = YAML.parse(
      await readFile(sdk.volumes.main.subpath('desired.yaml'), 'utf-8'),
    )
    const get = (...path: string[]): string | undefined => {
      let v: unknown = doc
      for (const k of path) {
        if (typeof v !== 'object' || v === null) return undefined
        v = (v as Record<string, unknown>)[k]
      }
      return typeof v === 'string' && v.length > 0 ? v : undefined
    }
    const spark = (v: string | undefined): Spark | undefined =>
      v === 'spark1' || v === 'spark2' ? v : undefined
    const out: Partial<Form> = {
      spark1Address: get('hosts', 'spark1', 'address'),
      spark1User: get('hosts', 'spark1', 'user'),
      spark2Address: get('hosts', 'spark2', 'address'),
      spark2User: get('hosts', 'spark2', 'user'),
      parakeetHost: spark(get('services', 'parakeet', 'host')),
      magpieHost: spark(get('services', 'magpie', 'host')),
    }
    // Leave unknown fields out, so the form keeps its defaults for them.
    for (const k of Object.keys(out) as (keyof Form)[]) {
      if (out[k] === undefined) delete out[k]
    }
    return out
  } catch {
    return {}
  }
}

export const configureSparks = sdk.Action.withInput(
  'configure-sparks',

  async () => ({
    name: i18n('Configure Sparks'),
    description: i18n(
      'Set the addresses and SSH users of the two Sparks and where Parakeet and Magpie run. Writes them into desired.yaml with `spark-control configure` (validated first; nothing is written on error). Spark Control picks up the change by itself.',
    ),
    warning: null,
    // The running service wrote the starting desired.yaml; configure edits it.
    allowedStatuses: 'only-running',
    group: null,
    visibility: 'enabled',
  }),

  inputSpec,

  async () => currentValues(),

  async ({ effects, input }) => {
    const out = await runSparkControl(
      effects,
      'configure',
      configureArgs(input),
    )
    if (out.exitCode !== 0) {
      throw new Error(
        i18n(
          'desired.yaml was not changed. spark-control configure reported:\n${output}',
          {
            output:
              out.stderr.trim() || out.stdout.trim() || `exit ${out.exitCode}`,
          },
        ),
      )
    }
    const notes = [out.stdout.trim(), out.stderr.trim()]
      .filter((s) => s.length > 0)
      .join('\n')
    return {
      version: '1',
      title: i18n('Sparks configured'),
      message:
        i18n(
          'desired.yaml now names both Sparks and the service placement. Open the Web UI to see what Spark Control observes and the plan it will run. If a Spark shows as unreachable, check that the key from "Show Public Key" is in that user\'s ~/.ssh/authorized_keys.',
        ) +
        (notes
          ? `\n\n${i18n('spark-control said:\n${notes}', { notes })}`
          : ''),
      result: null,
    }
  },
)

/**
 * Every user-visible string of the package, in English, each with a stable
 * number. Translations (translations.ts) are keyed by the number, so a string
 * can be reworded here without losing its translations' link; give a new
 * string the next unused number and never reuse one. `${name}` marks a value
 * passed at the call: i18n('…${name}…', { name }).
 */
export const DEFAULT_LANG = 'en_US'

const dict = {
  // main.ts
  'Starting Spark Control': 0,
  'Web interface': 1,
  'Spark Control is serving the web interface': 2,
  '/healthz answered HTTP ${status}': 3,
  'Spark Control is not answering on port ${port}': 4,
  Sparks: 5,
  'Waiting for Spark Control': 6,
  Ready: 7,
  'Not ready. If this is a new install, run the "Show Public Key" and "Configure Sparks" actions.': 8,

  // interfaces.ts
  'Web UI': 9,
  'Status, plan and settings for the Sparks: active model, model overrides, service placement, launcher updates': 10,
  'OpenAI-compatible API': 11,
  'Base URL for OpenAI clients (e.g. Open WebUI). Requests go to the active vLLM model; audio transcription goes to Parakeet. Service discovery JSON is at /api/endpoints on the same host.': 12,

  // actions/showPublicKey.ts
  'Show Public Key': 13,
  'Show the SSH public key Spark Control uses to log in to the Sparks. Add it to ~/.ssh/authorized_keys of the SSH user on both Sparks.': 14,
  'spark-control pubkey failed (exit ${code}): ${output}': 15,
  'spark-control pubkey printed something that is not an ed25519 public key line: ${output}': 16,
  'Spark Control public key': 17,
  'Authorize this key on BOTH Sparks, as the SSH user you will enter in "Configure Sparks" (e.g. nvidia): log in to each Spark and run the command below, or append the key line to ~/.ssh/authorized_keys by hand. The command adds the line only once. Then run "Configure Sparks".': 18,
  'Public key': 19,
  'One line for ~/.ssh/authorized_keys': 20,
  'Command to run on each Spark': 21,
  'Run as the SSH user on Spark 1 and on Spark 2 (not as root, unless root is that user)': 22,

  // actions/configureSparks.ts
  'Spark 1 (head)': 23,
  'Spark 2 (worker)': 24,
  'An IPv4 address such as 192.168.1.101, or a host name. No spaces or commas.': 25,
  'A Linux user name: lower-case letters, digits, "_", "." and "-", starting with a letter or "_".': 26,
  'Spark 1 address': 27,
  'Spark 2 address': 28,
  'The head node: runs launch-cluster.sh and serves the model on port 8888. Use the IPv4 address: a mDNS ".local" name may resolve to IPv6 first while vLLM listens on IPv4 only; the validator warns about it.': 29,
  'The worker node for tensor-parallel cluster models. Use the IPv4 address: a mDNS ".local" name may resolve to IPv6 first while vLLM listens on IPv4 only; the validator warns about it.': 30,
  'Spark ${n} SSH user': 31,
  'The user Spark Control logs in as on Spark ${n}. Its ~/.ssh/authorized_keys must hold the key from "Show Public Key", and it must be able to run docker.': 32,
  'Parakeet (speech-to-text, port 8000) runs on': 33,
  'Which Spark runs the Parakeet container.': 34,
  'Magpie (text-to-speech, port 9000) runs on': 35,
  'Which Spark runs the Magpie container.': 36,
  'Configure Sparks': 37,
  'Set the addresses and SSH users of the two Sparks and where Parakeet and Magpie run. Writes them into desired.yaml with `spark-control configure` (validated first; nothing is written on error). Spark Control picks up the change by itself.': 38,
  'desired.yaml was not changed. spark-control configure reported:\n${output}': 39,
  'Sparks configured': 40,
  'desired.yaml now names both Sparks and the service placement. Open the Web UI to see what Spark Control observes and the plan it will run. If a Spark shows as unreachable, check that the key from "Show Public Key" is in that user\'s ~/.ssh/authorized_keys.': 41,
  'spark-control said:\n${notes}': 42,

  // init/setupTask.ts
  'Tell Spark Control where your two Sparks are. First run "Show Public Key" and add the key to ~/.ssh/authorized_keys on both Sparks.': 43,
} as const

/**
 * Plumbing: the key and translation types the SDK's setupI18n needs.
 */
export type I18nKey = keyof typeof dict
export type LangDict = Record<(typeof dict)[I18nKey], string>
export default dict

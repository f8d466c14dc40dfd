// Generated from the OpenAPI document's components (src/http/openapi/typescript.rs).
// Do not edit: `UPDATE_WIRE_TYPES=1 cargo test --lib wire_types` rewrites it.

export interface Error {
  error: {
    message: string;
    type: string;
    code: string;
    current_text?: string;
    current_etag?: string;
    diagnostics?: Diagnostic[];
  };
}

export interface Written {
  etag: string;
  changed: boolean;
  warnings?: Diagnostic[];
}

export interface EditPreview {
  /** The ETag of the file the edit was applied to: send it as If-Match with the same edit */
  etag: string;
  /** The edit is already in force */
  unchanged: boolean;
  /** What the edit changes, one phrase each (as in git-ops commit messages) */
  changes: string[];
  plan: PlanView;
  warnings: string[];
}

export interface Accepted {
  accepted: string;
}

export interface PlanView {
  generation?: number;
  complete: boolean;
  incomplete_because?: string[];
  steps: Step[];
  text: string;
  busy?: boolean;
}

export type Endpoints = {
  /** Every catalog model by name: the deployment it is active on and that deployment's /v1 URL */
  models?: {
    [key: string]: ModelEndpoint;
  };
  [key: string]: {
    ready: boolean;
    base_url?: string;
    model?: string;
    kind?: string;
    openai_compat?: boolean;
  } | {
    [key: string]: ModelEndpoint;
  } | undefined;
};

export interface ModelEndpoint {
  ready: boolean;
  base_url: string | null;
  deployment: string | null;
  kind: "llm";
}

/** GET /v1/models on the proxy: the whole catalog, OpenAI's list shape plus status fields */
export interface ModelList {
  object: "list";
  data: ModelCard[];
}

export interface ModelCard {
  /** Catalog name */
  id: string;
  object: "model";
  created: number;
  owned_by: string;
  status: "serving" | "loading" | "available" | "downloading" | "failed";
  deployment?: string | null;
  repo: string;
  aliases: string[];
  max_model_len?: number | null;
}

export interface Event {
  at?: string;
  kind?: string;
  service?: string;
  ok?: boolean;
  source?: string;
  error?: string;
  ms?: number;
}

export interface HealthEvent {
  service: string;
  ok: boolean;
  source?: string | null;
  error?: string | null;
  ms?: number | null;
}

export type OverridesPatch = {
  max_context?: number | null;
  gpu_memory?: number | null;
  fastsafetensors?: boolean | null;
  prefix_caching?: boolean | null;
  fp8_kv_cache?: boolean | null;
  extra_args?: string[] | null;
  env?: {
    [key: string]: string;
  } | null;
};

export type DesiredEditActivate = {
  model: string | null;
  op: "activate";
};

export type DesiredEditSetOverrides = {
  model: string;
  overrides: OverridesPatch;
  op: "set_overrides";
};

export type DesiredEditAddModel = {
  name: string;
  repo: string;
  mode: "solo" | "cluster";
  op: "add_model";
};

export type DesiredEditRemoveModel = {
  name: string;
  op: "remove_model";
};

export type DesiredEditPlaceService = {
  service: string;
  host?: string | null;
  port?: number | null;
  running?: boolean | null;
  op: "place_service";
};

export type DesiredEditSetUpdatePolicy = {
  policy: string;
  pin?: string | null;
  op: "set_update_policy";
};

export type DesiredEditSetHost = {
  name: string;
  address: string;
  user?: string | null;
  port?: number | null;
  op: "set_host";
};

export type DesiredEditRemoveHost = {
  name: string;
  op: "remove_host";
};

export type DesiredEditSetDeploymentModel = {
  deployment: string;
  model: string | null;
  op: "set_deployment_model";
};

export type DesiredEditSetCluster = {
  head?: string | null;
  workers?: string[] | null;
  op: "set_cluster";
};

export type DesiredEdit = DesiredEditActivate | DesiredEditSetOverrides | DesiredEditAddModel | DesiredEditRemoveModel | DesiredEditPlaceService | DesiredEditSetUpdatePolicy | DesiredEditSetHost | DesiredEditRemoveHost | DesiredEditSetDeploymentModel | DesiredEditSetCluster;

/** The whole desired state of the cluster: `desired.yaml`. */
export type Desired = {
  /** Format version of this file. Always `1`. */
  version: number;
  /**
   * The machines spark-control manages, by name (e.g. `spark1`, `spark2`). Any number.
   * Use IPv4 addresses: vLLM binds IPv4 only, and mDNS `.local` names resolve to IPv6 first.
   */
  hosts: {
    [key: string]: Host;
  };
  /**
   * Where vLLM runs: the head host that runs the launcher, and the workers it drives for
   * tensor-parallel "cluster" models. Omit until hosts are configured.
   */
  cluster?: Cluster | null;
  /**
   * The model that should be serving, by catalog name (bundled or custom), or `null` for
   * none. Changing it swaps models: the old one is stopped before the new one launches.
   */
  active_model: string | null;
  /**
   * Several vLLM deployments at once, each on its own hosts (e.g. a coder model on
   * `spark1` and a vision model on `spark2`, or one cluster model over both). Use it
   * instead of `cluster:` + `active_model:` (which stay valid and mean one deployment).
   * A host may be listed in several deployments, but at most one of them may have an
   * active model: moving from two solo deployments to one cluster deployment stops the
   * solo models first.
   */
  deployments?: DeploymentSpec[];
  /**
   * Custom catalog entries, merged with the five bundled models (`qwen3-vl`, `gemma4`,
   * `qwen36`, `qwen3-235b-fp8`, `qwen2.5-72b`). An entry with a bundled name replaces it.
   */
  models: {
    [key: string]: ModelSpec;
  };
  /**
   * Per-model launch settings, for bundled or custom models. Changing the settings of the
   * active model relaunches it; settings of other models take effect when they are activated.
   */
  overrides: {
    [key: string]: Overrides;
  };
  /**
   * Side services (speech-to-text, text-to-speech, ...): which host runs each, on which
   * port, and whether it should be running. Each is a docker container on its host.
   */
  services: {
    [key: string]: Service;
  };
  /** Update policy for the launcher checkout (spark-vllm-docker) on the head. */
  updates: Updates;
  /** Settings of the OpenAI-compatible passthrough proxy served at `/v1`. */
  proxy: ProxySettings;
  /** SSH settings shared by every host. */
  ssh: SshSettings;
  /**
   * Git-ops: every edit made through the UI or API is a commit of this file, with a
   * history and rollback; with `remote`, the controller also pulls from (and pushes to)
   * that repository. Without this section, git-ops is on when the file is tracked in a
   * git work tree; `git: {}` turns it on for an untracked file too (a repository is
   * created in the file's directory when there is none).
   */
  git?: GitSettings | null;
};

/** One machine spark-control reaches over SSH. */
export type Host = {
  /** IPv4 address (preferred) or DNS name. Also used for HTTP health checks and the proxy. */
  address: string;
  /** SSH user. */
  user: string;
  /** SSH port. */
  port: number;
  /**
   * Pinned SSH host key, either a public key line (`ssh-ed25519 AAAA...`) or a
   * fingerprint (`SHA256:...`). Without it, the key seen on first contact is remembered
   * in `<data dir>/known_hosts` and a later change is refused.
   */
  host_key?: string | null;
  /**
   * How commands reach the host: `ssh` (default) or `local` (run on this machine, when
   * spark-control runs on that Spark itself).
   */
  transport: TransportKind;
  /**
   * The host's address on the ConnectX-7 interconnect (e.g. `192.168.100.11`), which the
   * launcher is given in `-n`: spark-vllm-docker finds its own IP on that interface and
   * refuses a node list without it ("Local IP ... is not in the list of nodes"). Usually
   * not the LAN `address` used for SSH and HTTP. Unset: `address` is used.
   */
  interconnect?: string | null;
};

/** How commands reach a host. */
export type TransportKind = "ssh" | "local";

/** The vLLM cluster: head, workers, port, launcher. */
export type Cluster = {
  /** Host that runs the launcher and serves the OpenAI API (Spark 1). */
  head: string;
  /** Hosts driven by the head for tensor-parallel "cluster" models (Spark 2, ...). */
  workers: string[];
  /** Port vLLM serves on, on the head. */
  port: number;
  /** The spark-vllm-docker checkout on the head (`~/` means the SSH user's home). */
  launcher: string;
  /** Name of the vLLM container the launcher runs. */
  container: string;
  /**
   * What a request naming a catalog model this deployment could serve, but does not,
   * does: `off` (404 `model_not_loaded`, as always) or `swap` (its `active_model` is set
   * to that model by a recorded edit of this file, and the request waits for it).
   */
  on_request?: OnRequest;
  /**
   * Unload the model after this long without a request (`90s`, `30m`, `2h`): its
   * `active_model` is set to `null` by a recorded edit. Unset or `null`: never.
   */
  idle_unload_after?: string | null;
  /**
   * Ignored (kept so older files load): spark-control now starts the launcher itself,
   * detached in its own session with its output captured, on every launcher generation.
   */
  detach?: DetachMode | null;
  /**
   * Override of the launch command, as argv; leave unset: the launcher driver builds the
   * right command for the launcher generation it detects on the head. Placeholders:
   * `{solo}` (`--solo` or nothing; generation B only), `{nodes}` (interconnect addresses
   * of the model's hosts, comma-separated), `{detach}` (`-d` on generation B, nothing on
   * A), `{repo}`, `{port}`, `{tp}` (`-tp N` or nothing), `{flags}` (settings + extra
   * args). An element that is exactly a list placeholder expands to zero or more
   * arguments. Everything after `exec` is the command: it reaches vLLM's argv as written
   * (quoted for generation A, which re-parses it with bash).
   */
  launch_template?: string[] | null;
  /**
   * Override of the stop command, as argv, run in the launcher directory; leave unset.
   * `{nodes}` is every cluster host's interconnect address: a stop without `-n`
   * autodiscovers and, finding no peers, stops the head only.
   */
  stop_template?: string[] | null;
  /**
   * Seconds a launch may take to produce a running vLLM container before it fails with
   * the launcher's last lines (the model's loading time is `start_timeout_secs`).
   */
  launch_timeout_secs: number;
  /** Seconds to wait for a model to become ready unless the model says otherwise. */
  start_timeout_secs: number;
  /**
   * After a stop, wait until each GPU's used memory is below this many MiB (or
   * `settle_timeout_secs` passed) before launching the next model. On unified memory
   * (DGX Spark's GB10, where `nvidia-smi` reports no GPU memory) the wait is instead
   * until the share of host memory the next model asks vLLM for (`gpu_memory`, vLLM's
   * default 0.9) is available, as `free -m` reports it.
   */
  settle_below_mib: number;
  /** Upper bound of the wait for GPU memory to settle after a stop. */
  settle_timeout_secs: number;
};

/** What a request for a catalog model a deployment does not serve does (`on_request`). */
export type OnRequest = "off" | "swap";

/** How a launch is detached from the SSH session. */
export type DetachMode = "flag" | "nohup";

/**
 * One entry of `deployments:`: a vLLM launched by the launcher on `head`, serving one
 * model at a time.
 */
export type DeploymentSpec = {
  /** The deployment's name (e.g. `coder`), shown in plans and `/v1/models`. */
  name: string;
  /** Host that runs the launcher and serves the OpenAI API. */
  head: string;
  /** Hosts driven by the head for tensor-parallel "cluster" models. */
  workers: string[];
  /** Port vLLM serves on, on the head. */
  port: number;
  /**
   * The model this deployment should serve, by catalog name, or `null` for none. The
   * key must be present (`null` for none), so a file cut short never reads as "stop".
   */
  active_model: string | null;
  /** The spark-vllm-docker checkout on the head (`~/` means the SSH user's home). */
  launcher: string;
  /** Name of the vLLM container the launcher runs. */
  container: string;
  /**
   * What a request naming a catalog model this deployment could serve, but does not,
   * does: `off` (404 `model_not_loaded`, as always) or `swap` (its `active_model` is set
   * to that model by a recorded edit of this file, and the request waits for it).
   */
  on_request?: OnRequest;
  /**
   * Unload the model after this long without a request (`90s`, `30m`, `2h`): its
   * `active_model` is set to `null` by a recorded edit. Unset or `null`: never.
   */
  idle_unload_after?: string | null;
};

/** A catalog entry: which Hugging Face repo, launched how. */
export type ModelSpec = {
  /** Hugging Face repository, `org/name`. */
  repo: string;
  /** `solo`: on the head only. `cluster`: tensor-parallel across the head and every worker. */
  mode: Mode;
  /** A short note shown in the UI. */
  description?: string | null;
  /** Seconds this model may take to become ready (large models load slowly). */
  start_timeout_secs?: number | null;
  /**
   * More names clients may use for this model (besides its catalog name and its repo);
   * vLLM answers to all of them. Names are unique across the catalog.
   */
  aliases?: string[];
};

/** Where a model runs. */
export type Mode = "solo" | "cluster";

/** Launch settings of one model. Unset fields keep the bundled default (or vLLM's). */
export type Overrides = {
  /** Maximum context length in tokens (`--max-model-len`). */
  max_context?: number | null;
  /** Fraction of GPU memory vLLM may use, in (0, 1] (`--gpu-memory-utilization`). */
  gpu_memory?: number | null;
  /** Load weights with fastsafetensors (`--load-format fastsafetensors`). */
  fastsafetensors?: boolean | null;
  /** Automatic prefix caching (`--enable-prefix-caching`). */
  prefix_caching?: boolean | null;
  /** FP8 KV cache (`--kv-cache-dtype fp8`). */
  fp8_kv_cache?: boolean | null;
  /**
   * Extra arguments passed to `vllm serve` verbatim, one list element per argument.
   * At most 64 arguments of at most 4096 bytes each, 16 KiB in all.
   */
  extra_args?: string[];
  /**
   * Extra environment variables for the launcher. At most 64, names of at most 128
   * bytes, values of at most 4096 bytes, 8 KiB in all.
   */
  env?: {
    [key: string]: string;
  };
};

/** A side service: a docker container on one host. */
export type Service = {
  /** What it is: `stt` (speech-to-text), `tts` (text-to-speech) or `other`. */
  kind: ServiceKind;
  /** The host that runs it. Moving it stops it on the old host and starts it on the new. */
  host: string;
  /** The port it serves on. */
  port: number;
  /** Whether it should be running. */
  running: boolean;
  /**
   * Docker container name, if different from the service's name. The container must
   * exist on every host the service may be placed on.
   */
  container?: string | null;
  /** HTTP path answering 200 when healthy. */
  health_path: string;
  /** The model it serves, shown in `/api/endpoints` (e.g. `nvidia/parakeet-tdt-0.6b-v3`). */
  model?: string | null;
};

/** What a side service is. */
export type ServiceKind = "stt" | "tts" | "other";

/** Update policies. */
export type Updates = {
  /**
   * Launcher checkout policy: `manual` (check on request), `notify` (check periodically,
   * show commits behind), `auto` (apply when no model operation is in flight), or
   * `{pin: <commit>}` (keep the checkout at that commit, the image rebuilt to match).
   * Applying runs `git pull` and `./build-and-copy.sh -c <worker addresses>`.
   */
  launcher: UpdatePolicy;
  /** Seconds between periodic checks (`notify`, `auto`). */
  check_interval_secs: number;
  /**
   * With `launcher: auto`: apply only while no model serves (`active_model` is null and
   * vLLM lists no model), so a build never competes with a serving model. Default
   * false: apply whenever no model operation is in flight.
   */
  auto_only_when_idle: boolean;
};

/** Update policy for the launcher checkout. */
export type UpdatePolicy = "manual" | "notify" | "auto" | UpdatePolicy_pin;

/** OpenAI passthrough proxy settings. */
export type ProxySettings = {
  /** Overall limit of one proxied request, in seconds (big-context completions are slow). */
  timeout_secs: number;
  /** Connect timeout to the upstream, in milliseconds. */
  connect_timeout_ms: number;
  /** Largest JSON request body, in bytes. */
  max_json_body: number;
  /** Largest audio request body, in bytes. */
  max_audio_body: number;
  /**
   * While a model is loading, hold requests up to this many seconds instead of answering
   * 503 at once. 0: answer 503 with Retry-After.
   */
  wait_for_ready_secs: number;
  /**
   * Most requests at once per model, by catalog name (e.g. `{qwen36: 8}`); past it, 429
   * with `Retry-After`. Models not named here are not limited.
   */
  max_concurrent?: {
    [key: string]: number;
  };
  /**
   * Requests waiting for a request-triggered swap, per model; past it, 503 with
   * `Retry-After`.
   */
  swap_queue: number;
  /** Longest a request waits for a request-triggered swap, in seconds (then 503). */
  swap_wait_secs: number;
  /**
   * At most one request-triggered swap per deployment in this many seconds; requests
   * for another model wait for it (within `swap_wait_secs`) or get 503.
   */
  swap_min_interval_secs: number;
  /**
   * Before any swap stops a model, its requests in flight may finish for up to this
   * many seconds (no new ones are admitted); a stream still running then is ended with
   * one SSE `error` event.
   */
  drain_grace_secs: number;
};

/** SSH settings shared by every host. */
export type SshSettings = {
  /** Connect timeout, in seconds. */
  connect_timeout_secs: number;
  /** Default timeout of one remote command, in seconds. */
  command_timeout_secs: number;
  /** Seconds between polls of every host. */
  poll_interval_secs: number;
};

/** Git-ops settings (`git:`). */
export type GitSettings = {
  /**
   * The repository to pull from and push to (pull mode), e.g.
   * `git@github.com:me/cluster.git`, `https://git.example/me/cluster.git` or a path on
   * disk. Unset: local history only. The desired file must be in a clone of it.
   */
  remote?: string | null;
  /** The branch to follow (the clone must have it checked out). */
  branch: string;
  /**
   * The desired file's path inside the repository (e.g. `clusters/home/desired.yaml`);
   * checked against where the file is. Unset: wherever it is.
   */
  path?: string | null;
  /**
   * Seconds between fetches of `remote` (at least 5). A webhook
   * (`POST /api/git/webhook`) fetches at once.
   */
  interval_secs: number;
  /**
   * Push commits made here to `remote` (default true). A rejected push keeps the commit
   * locally and shows the branch as diverged.
   */
  push: boolean;
  /**
   * Author of the commits made here. Default `spark-control <spark-control@localhost>`;
   * who made the change (UI, API client, on-request) is in each message.
   */
  author?: GitIdentity | null;
  /** Committer of the commits made here. Default: the author. */
  committer?: GitIdentity | null;
  /**
   * SSH private key for an `ssh` remote. Default: the controller's own identity
   * (`<data dir>/id_ed25519`, its public key is on the Setup page).
   */
  ssh_key?: string | null;
  /**
   * File holding a token for an `https` remote (sent as the HTTP password; the user is
   * the URL's, else `x-access-token`). The token itself never goes in this file, and is
   * never logged.
   */
  token_file?: string | null;
  /** File holding the webhook's shared secret. Unset: `POST /api/git/webhook` is refused. */
  webhook_secret_file?: string | null;
};

/** A git author or committer. */
export type GitIdentity = {
  /** Name, e.g. `Home Lab Bot`. */
  name: string;
  /** E-mail address. */
  email: string;
};

/** A diagnostic as the API sends it: its fields plus the line people read. */
export interface Diagnostic {
  /** Error or warning. */
  severity: Severity;
  /** The file, as given by the caller. */
  file: string;
  /** 1-based line (0 when the problem is about the whole file). */
  line: number;
  /** 1-based column. */
  col: number;
  /** Dotted path of the field (`hosts.spark1.address`), empty for the whole document. */
  path: string;
  /** What is wrong and what would be right. */
  message: string;
  /** `FILE:LINE:COL: [warning: ]path: message`. */
  text: string;
}

/** Error (the file is not acted on) or warning (valid, but worth saying). */
export type Severity = "error" | "warning";

/** Everything observed, one snapshot. */
export interface Observed {
  /**
   * Increases with every completed poll; a plan remembers the generation it was made
   * from, and the executor refuses a plan older than the newest observation.
   */
  generation: number;
  /** Per host, by the names of the desired file. */
  hosts: {
    [key: string]: HostObserved;
  };
  /**
   * vLLM's API on the first deployment's head (`GET /v1/models`); the same value as
   * that deployment's entry in `deployments`.
   */
  vllm: Fact_of_VllmObserved;
  /** vLLM's API of every deployment, by deployment name (its head and port). */
  deployments?: {
    [key: string]: Fact_of_VllmObserved;
  };
  /** Health of each side service (HTTP GET of its health path on its placed host). */
  services: {
    [key: string]: Fact_of_boolean;
  };
}

/** What one host looked like. */
export interface HostObserved {
  /** Whether an SSH command ran; unknown before the first poll. */
  reachable: Fact_of_boolean;
  /** SSH round trip of the poll's first command, in milliseconds. */
  rtt_ms?: number | null;
  /** Docker containers by name. */
  containers: Fact_of_Map_of_ContainerObserved;
  /** The launch record spark-control left on this host (head only): what it launched. */
  launch: Fact_of_Nullable_LaunchRecord;
  /** Hugging Face repos complete in this host's HF cache. */
  hf_cache: Fact_of_Set_of_string;
  /** The launcher checkout (head only). */
  launcher: Fact_of_LauncherObserved;
  /** GPUs (`nvidia-smi`). */
  gpus: Fact_of_Array_of_GpuObserved;
  /** The launcher process spark-control started (head only). */
  launcher_process: Fact_of_LauncherState;
  /**
   * Whether a `vllm serve` process runs inside the vLLM container (head only; `false`
   * also when the container does not run). A container can outlive vLLM (generation B).
   */
  vllm_process: Fact_of_boolean;
}

/** A fact the poller knows (and since when), or does not know (and why). */
export type Fact_of_boolean = Fact_of_boolean_known | Fact_of_boolean_unknown;

/** A fact the poller knows (and since when), or does not know (and why). */
export type Fact_of_Map_of_ContainerObserved = Fact_of_Map_of_ContainerObserved_known | Fact_of_Map_of_ContainerObserved_unknown;

/** One docker container. */
export interface ContainerObserved {
  /** `docker ps` State is `running`. */
  running: boolean;
  /** Image name. */
  image: string;
}

/** A fact the poller knows (and since when), or does not know (and why). */
export type Fact_of_Nullable_LaunchRecord = Fact_of_Nullable_LaunchRecord_known | Fact_of_Nullable_LaunchRecord_unknown;

/**
 * What spark-control launched on the head (written there at launch time, so a restarted
 * controller knows what runs and with which settings).
 */
export interface LaunchRecord {
  /** Catalog name. */
  model: string;
  /** Hugging Face repo. */
  repo: string;
  /** Fingerprint of the launch argv + env. */
  fingerprint: string;
  /** Effective settings at launch. */
  settings: Overrides;
  /** When it was launched. */
  launched_at?: string | null;
  /** The addresses the launcher was given in `-n`, head first. */
  nodes?: string[];
  /** The launcher generation it was launched with. */
  generation?: Generation | null;
  /**
   * When it first answered (written by the wait for ready): from then on, failed health
   * checks mean a crash, not loading.
   */
  ready_at?: string | null;
  /**
   * The deployment it was launched for (absent in records of older builds: then the
   * first deployment whose head this host is).
   */
  deployment?: string | null;
}

/** A generation of `launch-cluster.sh`. */
export type Generation = "A" | "B";

/** A fact the poller knows (and since when), or does not know (and why). */
export type Fact_of_Set_of_string = Fact_of_Set_of_string_known | Fact_of_Set_of_string_unknown;

/** A fact the poller knows (and since when), or does not know (and why). */
export type Fact_of_LauncherObserved = Fact_of_LauncherObserved_known | Fact_of_LauncherObserved_unknown;

/** The launcher checkout. */
export interface LauncherObserved {
  /** HEAD commit. */
  head: string;
  /** Commits behind upstream, when checked. */
  behind?: number | null;
  /** Subjects of the commits behind, newest first. */
  subjects?: string[];
  /**
   * The launcher generation, detected from `./launch-cluster.sh --help` (cached per
   * commit).
   */
  generation?: Generation | null;
  /** Why the generation could not be detected. */
  generation_error?: string | null;
  /** The branch checked out; `None` when HEAD is detached (a pinned commit). */
  branch?: string | null;
  /**
   * The branch spark-control left when it pinned the checkout (recorded in the
   * checkout's git config as `spark-control.pinned-from`), to return to it later.
   */
  pinned_from?: string | null;
}

/** A fact the poller knows (and since when), or does not know (and why). */
export type Fact_of_Array_of_GpuObserved = Fact_of_Array_of_GpuObserved_known | Fact_of_Array_of_GpuObserved_unknown;

/** One GPU. */
export interface GpuObserved {
  /** Index. */
  index: number;
  /** Name. */
  name: string;
  /** Utilisation, percent. */
  util_pct: number;
  /** Memory used, MiB. */
  mem_used_mib: number;
  /** Memory total, MiB (may be unknown on unified-memory GB10: 0). */
  mem_total_mib: number;
  /** Temperature, °C. */
  temp_c: number;
  /** Power, W. */
  power_w: number;
}

/** A fact the poller knows (and since when), or does not know (and why). */
export type Fact_of_LauncherState = Fact_of_LauncherState_known | Fact_of_LauncherState_unknown;

/** What [`STATE`] printed. */
export type LauncherState = LauncherState_none | LauncherState_running | LauncherState_exited | LauncherState_killed;

/** A fact the poller knows (and since when), or does not know (and why). */
export type Fact_of_VllmObserved = Fact_of_VllmObserved_known | Fact_of_VllmObserved_unknown;

/** What vLLM's API answered. */
export interface VllmObserved {
  /**
   * Model ids listed by `/v1/models`; empty when nothing answers on the port
   * (connection refused: known to be not serving).
   */
  models: string[];
  /** Consecutive failed `GET /health` checks (0 after a 200). */
  health_failures: number;
}

/** The plan: what to do, and whether the planner saw enough to be sure. */
export interface Plan {
  /** Observation generation this plan was made from. */
  generation: number;
  /** Ordered steps. */
  steps: Step[];
  /** False when something needed could not be seen (see `unknown`). */
  complete: boolean;
  /** What could not be seen, and what was therefore not decided. */
  unknown: string[];
}

/** An action and why it is needed. */
export type Step = Step_stop_model | Step_settle_gpu | Step_download | Step_launch_model | Step_wait_ready | Step_stop_service | Step_start_service | Step_restart_service | Step_fetch_launcher | Step_update_launcher | Step_checkout_launcher | Step_return_launcher;

/** Why a model is stopped. */
export type StopReason = StopReason_swap | StopReason_relaunch | StopReason_none_desired | StopReason_cleanup | StopReason_unidentified | StopReason_crashed;

/**
 * Everything the executor needs to launch a model, and what identifies that launch. The
 * launcher argv is built from it by `crate::launcher` for the generation on the head.
 */
export interface LaunchSpec {
  /** Catalog name. */
  model: string;
  /** Hugging Face repo. */
  repo: string;
  /** Solo or cluster. */
  mode: Mode;
  /** Hosts involved, head first (solo: the head only). */
  hosts: string[];
  /** The launcher addresses of `hosts` (interconnect, else address), head first: `-n`. */
  nodes: string[];
  /** vLLM's port on the head. */
  port: number;
  /** vLLM flags: the settings, then the extra args. */
  flags: string[];
  /** Environment for vLLM. */
  env: {
    [key: string]: string;
  };
  /** The names vLLM answers to in `/v1/models` (`--served-model-name`, else the repo). */
  served: string[];
  /** The effective settings (for showing what changed on a relaunch). */
  settings: Overrides;
  /** Seconds to wait for ready. */
  start_timeout_secs: number;
  /**
   * Short hash of what vLLM is started with (repo, nodes, port, flags, env): a change
   * means relaunch. Independent of the launcher generation.
   */
  fingerprint: string;
}

/** One resource's status. */
export interface Resource {
  /** `model`, `service`, `host`, `launcher`. */
  kind: string;
  /** Its name (`qwen36`, `parakeet`, `spark1`, `launcher`). */
  name: string;
  /** Sync status. */
  sync: Sync;
  /** Health status. */
  health: Health;
  /** A short explanation for people. */
  detail: string;
}

/** Whether a resource matches the desired state. */
export type Sync = "InSync" | "OutOfSync" | "Unknown";

/** How a resource is doing. */
export type Health = "Healthy" | "Progressing" | "Degraded" | "Missing";

/** The state of one operation (a plan being run). */
export interface Operation {
  /** Id (also the log's `op`). */
  id: number;
  /** The plan's text rendering when it started. */
  plan_text: string;
  /** Index of the step running now. */
  step: number;
  /** Number of steps. */
  steps: number;
  /** What it is doing now, for people (`launch qwen36 on spark1`). */
  phase: string;
  /** Progress within the step, 0..=1, when known (downloads). */
  progress: number | null;
  /** When it started. */
  started_at: string;
  /** When it ended. */
  finished_at: string | null;
  /** Outcome. */
  outcome: Outcome;
  /**
   * For a failed operation, what kind of failure ended it (`config`: a setting or
   * the host's setup is wrong and a retry does the same, so none is scheduled;
   * `check`, `remote`, `timeout`: retried after the backoff).
   */
  failure_kind?: ExecErrorKind | null;
  /**
   * Its steps in order, typed, each with when it started and ended (what the UI names
   * and times: stopping, freeing memory, downloading, starting, ready).
   */
  timeline: OpStep[];
  /** While a step waits on a download: its bytes, size, rate and time left. */
  download: OpDownload | null;
}

/** How an operation ended. */
export type Outcome = Outcome_running | Outcome_succeeded | Outcome_failed | Outcome_cancelled;

/**
 * The kind of an [`ExecError`], for policy code and the wire (`"config"`, `"check"`,
 * `"remote"`, `"cancelled"`, `"timeout"`).
 */
export type ExecErrorKind = "config" | "check" | "remote" | "cancelled" | "timeout";

/** One step of an operation and when it ran. */
export interface OpStep {
  /** The step (its `action` names the kind). */
  step: Step;
  /** When it started; `None`: not yet. */
  started_at: string | null;
  /** When it ended; `None`: not yet, or the operation ended inside it. */
  finished_at: string | null;
}

/** The download an operation waits on, summed over its hosts. */
export interface OpDownload {
  /** The repo. */
  repo: string;
  /** Bytes in the hosts' caches. */
  bytes: number;
  /** The size on every host together; `None`: the Hub gave no size. */
  total: number | null;
  /** Bytes per second over the last few samples, all hosts together. */
  rate_bps: number | null;
  /** Seconds left at that rate (the slowest host), when the size is known. */
  eta_secs: number | null;
}

/**
 * Failure backoff: after repeated failures the loop stops trying until the desired state
 * changes or a retry is asked for.
 */
export interface Backoff {
  /** Consecutive failures of the same plan. */
  failures: number;
  /** When the next attempt is due (None: given up, waiting for a change or retry). */
  next_attempt: string | null;
  /** The last error. */
  error: string;
}

/** What a caller needs to know about authentication. */
export interface AuthView {
  /** Whether mutating routes (and reads) need the admin token. */
  admin_token: boolean;
}

/** One entry of the effective catalog, and whether it is the active model. */
export interface CatalogEntryView {
  /** Catalog name. */
  name: string;
  /** Hugging Face repository, `org/name`. */
  repo: string;
  /** `solo`: on the head only. `cluster`: tensor-parallel across the head and every worker. */
  mode: Mode;
  /** A short note shown in the UI. */
  description?: string | null;
  /** Seconds this model may take to become ready (large models load slowly). */
  start_timeout_secs?: number | null;
  /**
   * More names clients may use for this model (besides its catalog name and its repo);
   * vLLM answers to all of them. Names are unique across the catalog.
   */
  aliases?: string[];
  /** Whether it comes from the bundled catalog (and was not replaced by a custom entry). */
  bundled: boolean;
  /** Settings after merging the file's overrides over the bundled defaults. */
  settings: Overrides;
  /** Whether it is the desired state's `active_model`. */
  active: boolean;
}

/** One event of `GET /api/state/stream`: the server's epoch and the state. */
export interface StateEvent {
  /**
   * Chosen at the server's start-up: a different value means the server restarted
   * (operation ids and log sequence numbers began again), so a reader resyncs.
   */
  epoch: string;
  /** What `GET /api/state` answers now. */
  state: StateView;
}

/**
 * The body of `GET /api/state`: the status snapshot, auth, the effective catalog and
 * readiness.
 */
export interface StateView {
  /** The desired file being watched. */
  desired_file: string;
  /** The desired state in force (the last valid file), if any. */
  desired: Desired | null;
  /** Problems of the file as it is on disk now (errors mean the last good one is in force). */
  desired_diagnostics: Diagnostic[];
  /** Latest observation. */
  observed: Observed;
  /** The plan the loop would run now. */
  plan: Plan;
  /** Its text rendering. */
  plan_text: string;
  /** Per-resource sync and health. */
  resources: Resource[];
  /** The operation running now, or the last one. */
  operation: Operation | null;
  /** The last operation that ended (while another runs, the one before it). */
  ended_operation: Operation | null;
  /**
   * The last few operations that ended, oldest first (the last is `ended_operation`):
   * a reader of merged snapshots (the state stream) learns every end from them.
   */
  recent_operations: Operation[];
  /** Failure backoff, when the last operation failed. */
  backoff: Backoff | null;
  /** Why plan steps wait although nothing failed (a person cancelled an operation). */
  held: string | null;
  /** The last error anywhere in the loop. */
  last_error: string | null;
  /** When the loop started. */
  started_at: string;
  /** When this snapshot was made. */
  updated_at: string;
  /** What this server asks of callers. */
  auth: AuthView;
  /**
   * The effective catalog (bundled and custom entries, merged settings), by name; empty
   * without a valid desired file.
   */
  catalog: CatalogEntryView[];
  /** Whether an operation runs now. */
  busy: boolean;
  /** What `GET /readyz` answers: a valid desired file and a first observation. */
  ready: boolean;
}

/**
 * Keep the checkout at this commit (full or abbreviated hash); the image is rebuilt
 * to match. Leaving the pin for another policy checks the branch out again.
 */
export type UpdatePolicy_pin = {
  pin: string;
};

/** Seen. */
export type Fact_of_boolean_known = {
  known: {
    /** The value. */
    value: boolean;
    /** When it was seen (absent in hand-written observed files). */
    at?: string | null;
  };
};

/** Not seen. */
export type Fact_of_boolean_unknown = {
  unknown: {
    /** Why not: "host unreachable: connection refused", "not polled yet", ... */
    why: string;
  };
};

/** Seen. */
export type Fact_of_Map_of_ContainerObserved_known = {
  known: {
    /** The value. */
    value: {
      [key: string]: ContainerObserved;
    };
    /** When it was seen (absent in hand-written observed files). */
    at?: string | null;
  };
};

/** Not seen. */
export type Fact_of_Map_of_ContainerObserved_unknown = {
  unknown: {
    /** Why not: "host unreachable: connection refused", "not polled yet", ... */
    why: string;
  };
};

/** Seen. */
export type Fact_of_Nullable_LaunchRecord_known = {
  known: {
    /** The value. */
    value: LaunchRecord | null;
    /** When it was seen (absent in hand-written observed files). */
    at?: string | null;
  };
};

/** Not seen. */
export type Fact_of_Nullable_LaunchRecord_unknown = {
  unknown: {
    /** Why not: "host unreachable: connection refused", "not polled yet", ... */
    why: string;
  };
};

/** Seen. */
export type Fact_of_Set_of_string_known = {
  known: {
    /** The value. */
    value: string[];
    /** When it was seen (absent in hand-written observed files). */
    at?: string | null;
  };
};

/** Not seen. */
export type Fact_of_Set_of_string_unknown = {
  unknown: {
    /** Why not: "host unreachable: connection refused", "not polled yet", ... */
    why: string;
  };
};

/** Seen. */
export type Fact_of_LauncherObserved_known = {
  known: {
    /** The value. */
    value: LauncherObserved;
    /** When it was seen (absent in hand-written observed files). */
    at?: string | null;
  };
};

/** Not seen. */
export type Fact_of_LauncherObserved_unknown = {
  unknown: {
    /** Why not: "host unreachable: connection refused", "not polled yet", ... */
    why: string;
  };
};

/** Seen. */
export type Fact_of_Array_of_GpuObserved_known = {
  known: {
    /** The value. */
    value: GpuObserved[];
    /** When it was seen (absent in hand-written observed files). */
    at?: string | null;
  };
};

/** Not seen. */
export type Fact_of_Array_of_GpuObserved_unknown = {
  unknown: {
    /** Why not: "host unreachable: connection refused", "not polled yet", ... */
    why: string;
  };
};

/** Seen. */
export type Fact_of_LauncherState_known = {
  known: {
    /** The value. */
    value: LauncherState;
    /** When it was seen (absent in hand-written observed files). */
    at?: string | null;
  };
};

/** Not seen. */
export type Fact_of_LauncherState_unknown = {
  unknown: {
    /** Why not: "host unreachable: connection refused", "not polled yet", ... */
    why: string;
  };
};

/** No launcher of ours was recorded (or it was stopped and forgotten). */
export interface LauncherState_none {
  state: "none";
}

/** Alive, with this session id. */
export interface LauncherState_running {
  state: "running";
  /** The session (and process group) id. */
  pid: number;
}

/** Exited on its own with this status. */
export interface LauncherState_exited {
  state: "exited";
  /** Exit status. */
  status: number;
}

/** Gone without an exit status (killed by a signal). */
export interface LauncherState_killed {
  state: "killed";
}

/** Seen. */
export type Fact_of_VllmObserved_known = {
  known: {
    /** The value. */
    value: VllmObserved;
    /** When it was seen (absent in hand-written observed files). */
    at?: string | null;
  };
};

/** Not seen. */
export type Fact_of_VllmObserved_unknown = {
  unknown: {
    /** Why not: "host unreachable: connection refused", "not polled yet", ... */
    why: string;
  };
};

/** Ensure no model runs: `launch-cluster.sh stop` in the launcher dir on the head. */
export interface Step_stop_model {
  action: "stop_model";
  /** The head. */
  host: string;
  /** The deployment whose launch is stopped (its hosts and port are verified). */
  deployment: string;
  /** What runs now, when known. */
  model: string | null;
  /** Why. */
  reason: StopReason;
}

/** Wait until GPU memory used is below a threshold on these hosts (after a stop). */
export interface Step_settle_gpu {
  action: "settle_gpu";
  /** Hosts to watch. */
  hosts: string[];
  /** Threshold, MiB. */
  below_mib: number;
  /**
   * On unified memory (GB10: `nvidia-smi` reports no GPU memory), wait instead until
   * this share of the host's memory is available: the share the next launch asks
   * vLLM for (`--gpu-memory-utilization`), which vLLM checks at start.
   */
  free_share: number;
  /** Upper bound, seconds. */
  timeout_secs: number;
}

/** Ensure `repo` is in `host`'s Hugging Face cache. */
export interface Step_download {
  action: "download";
  /** Target host. */
  host: string;
  /** Catalog name. */
  model: string;
  /** Repo. */
  repo: string;
}

/** Ensure the model runs (launch on the head). */
export interface Step_launch_model {
  action: "launch_model";
  /** The launch. */
  spec: LaunchSpec;
  /** The head. */
  host: string;
  /** The deployment it is launched for. */
  deployment: string;
  /** The launcher generation detected on the head. */
  generation: Generation;
  /** The exact launcher argv (run in the launcher directory). */
  argv: string[];
}

/** Wait until the model answers on the head's port. */
export interface Step_wait_ready {
  action: "wait_ready";
  /** Catalog name. */
  model: string;
  /** Repo (listed by `/v1/models` when ready). */
  repo: string;
  /** The head. */
  host: string;
  /** The deployment it is launched for. */
  deployment: string;
  /** The names vLLM answers to (`--served-model-name`, else the repo). */
  served: string[];
  /** vLLM port. */
  port: number;
  /** Upper bound, seconds. */
  timeout_secs: number;
}

/** Ensure the service's container is stopped on `host`. */
export interface Step_stop_service {
  action: "stop_service";
  /** Service name. */
  service: string;
  /** Host. */
  host: string;
  /** Container name. */
  container: string;
}

/** Ensure the service's container runs on `host`. */
export interface Step_start_service {
  action: "start_service";
  /** Service name. */
  service: string;
  /** Host. */
  host: string;
  /** Container name. */
  container: string;
  /** Port it serves on. */
  port: number;
}

/** Restart a service's container (an imperative one-shot; the planner never emits it). */
export interface Step_restart_service {
  action: "restart_service";
  /** Service name. */
  service: string;
  /** Host. */
  host: string;
  /** Container name. */
  container: string;
}

/** `git fetch` in the launcher checkout, to learn what is new upstream (one-shot). */
export interface Step_fetch_launcher {
  action: "fetch_launcher";
  /** The head. */
  host: string;
}

/** `git pull && ./build-and-copy.sh -c <workers>` in the launcher checkout. */
export interface Step_update_launcher {
  action: "update_launcher";
  /** The head. */
  host: string;
  /** Commits behind. */
  behind: number;
}

/**
 * Check out a pinned commit in the launcher checkout, then build the image and copy
 * it to the workers (`./build-and-copy.sh -c <workers>`), so the image matches.
 */
export interface Step_checkout_launcher {
  action: "checkout_launcher";
  /** The head. */
  host: string;
  /** Pinned commit. */
  commit: string;
  /** Current HEAD. */
  from: string;
}

/**
 * Leave a pin: check out again the branch the checkout followed before it was
 * pinned (and build when that moved HEAD).
 */
export interface Step_return_launcher {
  action: "return_launcher";
  /** The head. */
  host: string;
  /** The branch to follow again. */
  branch: string;
  /** Current HEAD (the old pin). */
  from: string;
}

/** Another model is desired. */
export interface StopReason_swap {
  kind: "swap";
  /** The model desired instead. */
  to: string;
}

/** The same model, with a changed launch. */
export interface StopReason_relaunch {
  kind: "relaunch";
  /** What changed, for people. */
  changes: string[];
}

/** No model is desired. */
export interface StopReason_none_desired {
  kind: "none_desired";
}

/** Leftover containers on workers while the head runs nothing. */
export interface StopReason_cleanup {
  kind: "cleanup";
}

/** Something runs that spark-control cannot identify, and another model is desired. */
export interface StopReason_unidentified {
  kind: "unidentified";
}

/** The model crashed (its container outlived it, or it stopped answering). */
export interface StopReason_crashed {
  kind: "crashed";
  /** What was seen. */
  why: string;
}

/** Still running. */
export interface Outcome_running {
  state: "running";
}

/** Every step done and verified. */
export interface Outcome_succeeded {
  state: "succeeded";
}

/** A step failed (message says which and why). */
export interface Outcome_failed {
  state: "failed";
  detail: string;
}

/** Superseded by a newer desired state or shutdown. */
export interface Outcome_cancelled {
  state: "cancelled";
  detail: string;
}

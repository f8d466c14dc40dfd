/**
 * Static package metadata: id, descriptions, the image (built from the
 * repository's container/Dockerfile) and the one data volume.
 */
import { setupManifest } from '@start9labs/start-sdk'

// Placeholder until the project has a public home; start-cli packs with it,
// the StartOS marketplace shows it as a link.
const projectUrl = 'https://github.com/spark-control/spark-control'

export const manifest = setupManifest({
  id: 'spark-control',
  title: 'Spark Control',
  license: 'MIT',
  packageRepo: projectUrl,
  upstreamRepo: projectUrl,
  marketingUrl: projectUrl,
  donationUrl: null,
  description: {
    short: 'Declarative control plane for a two-Spark vLLM cluster',
    long: 'Spark Control keeps a desired-state file for two NVIDIA DGX Spark boxes (active model, model overrides, placement of the Parakeet and Magpie speech services, launcher update policy), polls what actually runs over SSH and HTTP, and converges the two safely. It serves a web UI, service discovery at /api/endpoints, and one OpenAI-compatible endpoint at /v1 that forwards to whichever model is active.',
  },
  volumes: ['main'],
  images: {
    'spark-control': {
      // Paths are relative to the directory start-cli runs in: startos/ (see
      // the Makefile). The build context is the repository root.
      source: {
        dockerBuild: {
          workdir: '..',
          dockerfile: '../container/Dockerfile',
        },
      },
      arch: ['x86_64', 'aarch64'],
    },
  },
  dependencies: {},
})

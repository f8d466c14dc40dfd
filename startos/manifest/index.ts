/**
 * Static package metadata: id, descriptions, the image (built from the
 * repository's container/Dockerfile) and the one data volume.
 *
 * No `alerts`: SDK 2.0 removed the field (StartOS no longer shows
 * install/update/uninstall/restore/start/stop prompts, and ignores the key).
 * What an install alert would say is in instructions.md and the install task
 * (init/setupTask.ts); the check rejects a leftover `alerts` key.
 */
import { setupManifest } from '@start9labs/start-sdk'
import { long, short } from './i18n'

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
  description: { short, long },
  volumes: ['main'],
  images: {
    'spark-control': {
      // Paths are relative to the package root (the repository root, where
      // make and start-cli run); the build context is that root too.
      source: {
        dockerBuild: {
          workdir: '.',
          dockerfile: 'container/Dockerfile',
        },
      },
      arch: ['x86_64', 'aarch64'],
    },
  },
  dependencies: {},
})

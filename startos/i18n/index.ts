/**
 * `i18n(key, params?)`: the string for the language StartOS runs the package
 * in (LANG), falling back to the English key. Keys are checked by tsc against
 * dictionaries/default.ts; every translation must cover every key.
 */
import { setupI18n } from '@start9labs/start-sdk'
import defaultDict, { DEFAULT_LANG } from './dictionaries/default'
import translations from './dictionaries/translations'

export const i18n = setupI18n(defaultDict, translations, DEFAULT_LANG)

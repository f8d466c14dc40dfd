#!/usr/bin/env node
// The StartOS package's checks that need node: run by scripts/check-startos.sh
// from the package root (the repository root) after `make javascript/index.js`.
//
//   node scripts/startos-check.cjs MANIFEST.json
//
// MANIFEST.json is what `start-cli s9pk pack` reads: the `manifest` export of
// javascript/index.js as JSON. Checked here, each failure printed as
// `startos: WHERE: WHAT`, exit 1 if any:
// - the manifest against start-core's `Manifest` type (the one the SDK ships,
//   generated from start-cli's Rust struct): every required field present, every
//   value of the declared type, no field the type does not have (start-cli and
//   StartOS would ignore it silently, e.g. the `alerts` SDK 2.0 removed);
// - what start-cli's parsing adds to the type: ids match ^[a-z0-9]+(-[a-z0-9]+)*$,
//   version and migration ranges parse as ExVer, URLs parse, every image has an
//   arch and an emulateMissingAs within it (or hardwareRequirements.arch), and
//   each dockerBuild's workdir and Dockerfile exist (pack's ingredients);
// - the bundle's exports: the ABI StartOS calls (manifest, main, init, uninit,
//   createBackup, actions);
// - i18n: the dictionary's numbers are unique, every translation has exactly
//   those numbers and the same ${placeholders} as the English string, every
//   dictionary string is used somewhere in startos/, and no user-visible field
//   (name, description, title, message, reason, display, ...) or Error in
//   startos/ is a bare string literal instead of an i18n() call.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const ts = require('typescript')
const sdk = require('@start9labs/start-sdk')

const root = process.cwd()
const errors = []
const fail = (where, what) => errors.push(`${where || '(manifest)'}: ${what}`)

// ---- the manifest against start-core's Manifest type -----------------------

function manifestType() {
  const sdkDir = path.dirname(require.resolve('@start9labs/start-sdk/package.json'))
  const coreDir = path.dirname(
    require.resolve('@start9labs/start-core/package.json', { paths: [sdkDir] }),
  )
  const file = path.join(coreDir, 'osBindings', 'Manifest.d.ts')
  const program = ts.createProgram([file], { strict: true, skipLibCheck: true, noEmit: true })
  const checker = program.getTypeChecker()
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(file))
  const symbol = checker.getExportsOfModule(moduleSymbol).find((s) => s.name === 'Manifest')
  if (!symbol) throw new Error(`${file} exports no Manifest type`)
  return { checker, type: checker.getDeclaredTypeOfSymbol(symbol) }
}

const describe = (v) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v)
const join = (where, key) => (where ? `${where}.${key}` : key)

/** Errors of `value` against TypeScript type `type`, as [where, what] pairs. */
function typeErrors(checker, value, type, where) {
  const out = []
  const F = ts.TypeFlags
  const show = () => checker.typeToString(type)
  if (type.flags & (F.Any | F.Unknown)) return out
  if (type.isUnion()) {
    let best = null
    for (const member of type.types) {
      const e = typeErrors(checker, value, member, where)
      if (e.length === 0) return out
      // Report the member that is closest: same kind of value, fewest errors.
      const sameKind = describe(value) === 'object' && member.flags & F.Object
      const score = e.length - (sameKind ? 1000 : 0)
      if (!best || score < best.score) best = { score, e }
    }
    return best.score < 0 ? best.e : [[where, `${describe(value)} is not ${show()}`]]
  }
  if (type.isStringLiteral() || type.isNumberLiteral()) {
    return value === type.value ? out : [[where, `must be ${show()}, is ${JSON.stringify(value)}`]]
  }
  if (type.flags & F.BooleanLiteral) {
    return value === (type.intrinsicName === 'true') ? out : [[where, `must be ${show()}`]]
  }
  if (type.flags & F.String) return typeof value === 'string' ? out : [[where, `${describe(value)} is not a string`]]
  if (type.flags & F.Number) return typeof value === 'number' ? out : [[where, `${describe(value)} is not a number`]]
  if (type.flags & F.Null) return value === null ? out : [[where, `${describe(value)} is not null`]]
  if (type.flags & F.Undefined) return value === undefined ? out : [[where, `must be absent`]]
  if (checker.isArrayType(type) || checker.isTupleType(type)) {
    if (!Array.isArray(value)) return [[where, `${describe(value)} is not an array (${show()})`]]
    const args = checker.getTypeArguments(type)
    value.forEach((v, i) => {
      const t = checker.isTupleType(type) ? args[i] : args[0]
      if (!t) out.push([`${where}[${i}]`, 'is beyond the tuple'])
      else out.push(...typeErrors(checker, v, t, `${where}[${i}]`))
    })
    return out
  }
  if (type.flags & F.Object || type.isIntersection()) {
    if (describe(value) !== 'object') return [[where, `${describe(value)} is not an object (${show()})`]]
    const props = checker.getPropertiesOfType(type)
    const known = new Set(props.map((p) => p.name))
    for (const p of props) {
      const v = value[p.name]
      if (v === undefined) {
        if (!(p.flags & ts.SymbolFlags.Optional)) out.push([join(where, p.name), 'required field missing'])
        continue
      }
      out.push(...typeErrors(checker, v, checker.getTypeOfSymbol(p), join(where, p.name)))
    }
    const index = checker.getIndexInfosOfType(type)[0]
    for (const k of Object.keys(value)) {
      if (known.has(k)) continue
      if (index) out.push(...typeErrors(checker, value[k], index.type, join(where, k)))
      else
        out.push([join(where, k), `unknown field: the Manifest type of SDK ${sdkVersion()} has no such field, so StartOS ignores it`])
    }
    return out
  }
  return [[where, `type ${show()} is not handled by this check`]]
}

function sdkVersion() {
  return require('@start9labs/start-sdk/package.json').version
}

// ---- what start-cli's Rust parsing adds to the type -----------------------

const idPattern = /^[a-z0-9]+(-[a-z0-9]+)*$/
const arches = new Set(['x86_64', 'aarch64', 'riscv64'])

function checkId(where, id) {
  if (typeof id === 'string' && !idPattern.test(id)) fail(where, `"${id}" is not an id (${idPattern.source})`)
}

function parses(where, value, parse, what) {
  if (typeof value !== 'string') return
  try {
    parse(value)
  } catch (e) {
    fail(where, `"${value}" is not ${what}: ${e.message}`)
  }
}

function checkLocale(where, value) {
  if (value && typeof value === 'object' && !('en_US' in value))
    fail(where, 'has no en_US entry (the default language of the package)')
}

function checkSemantics(m) {
  checkId('id', m.id)
  parses('version', m.version, (v) => sdk.ExtendedVersion.parse(v), 'an ExVer version')
  parses('canMigrateTo', m.canMigrateTo, (v) => sdk.VersionRange.parse(v), 'an ExVer range')
  parses('canMigrateFrom', m.canMigrateFrom, (v) => sdk.VersionRange.parse(v), 'an ExVer range')
  for (const k of ['osVersion', 'sdkVersion'])
    parses(k, m[k], (v) => sdk.Version.parse(v), 'a version')
  for (const k of ['packageRepo', 'upstreamRepo', 'marketingUrl', 'donationUrl'])
    parses(k, m[k], (v) => new URL(v), 'a URL')
  for (const k of ['title', 'license'])
    if (typeof m[k] === 'string' && m[k].trim() === '') fail(k, 'is empty')
  if (m.description) {
    checkLocale('description.short', m.description.short)
    checkLocale('description.long', m.description.long)
  }
  checkLocale('releaseNotes', m.releaseNotes)
  for (const v of m.volumes || []) if (v !== 'BACKUP') checkId(`volumes: ${v}`, v)
  for (const d of Object.keys(m.dependencies || {})) checkId(`dependencies.${d}`, d)
  const hwArch = m.hardwareRequirements && m.hardwareRequirements.arch
  for (const [id, img] of Object.entries(m.images || {})) {
    const where = `images.${id}`
    checkId(where, id)
    const arch = Array.isArray(img.arch) ? img.arch : []
    if (arch.length === 0) fail(`${where}.arch`, 'is empty: the image is built for no architecture')
    for (const a of arch) if (!arches.has(a)) fail(`${where}.arch`, `"${a}" is not one of ${[...arches].join(', ')}`)
    if (img.emulateMissingAs != null && !arch.includes(img.emulateMissingAs))
      fail(`${where}.emulateMissingAs`, '`emulateMissingAs` must match an included `arch`')
    if (img.emulateMissingAs == null && !hwArch)
      fail(where, '`emulateMissingAs` required for all images if no `arch` specified in `hardwareRequirements`')
    const build = img.source && img.source.dockerBuild
    if (build) {
      const workdir = build.workdir || '.'
      const dockerfile = build.dockerfile || path.join(workdir, 'Dockerfile')
      if (!isDir(workdir)) fail(`${where}.source.dockerBuild.workdir`, `${workdir}: no such directory in the package root`)
      if (!isFile(dockerfile)) fail(`${where}.source.dockerBuild.dockerfile`, `${dockerfile}: no such file in the package root`)
    }
    if (img.source && 'dockerTag' in img.source && !String(img.source.dockerTag).trim())
      fail(`${where}.source.dockerTag`, 'is empty')
  }
}

const isDir = (p) => fs.statSync(path.resolve(root, p), { throwIfNoEntry: false })?.isDirectory() === true
const isFile = (p) => fs.statSync(path.resolve(root, p), { throwIfNoEntry: false })?.isFile() === true

// ---- the bundle's exports --------------------------------------------------

function checkExports() {
  const bundle = require(path.resolve(root, 'javascript', 'index.js'))
  for (const k of ['main', 'init', 'uninit', 'createBackup'])
    if (typeof bundle[k] !== 'function') fail(`javascript/index.js: ${k}`, `not exported as a function (is ${describe(bundle[k])})`)
  for (const k of ['manifest', 'actions'])
    if (describe(bundle[k]) !== 'object') fail(`javascript/index.js: ${k}`, `not exported as an object (is ${describe(bundle[k])})`)
}

// ---- i18n ------------------------------------------------------------------

const dictDir = path.join('startos', 'i18n', 'dictionaries')

/** The module's default export, compiled from TypeScript (imports are type-only). */
function loadTs(file) {
  const source = fs.readFileSync(path.resolve(root, file), 'utf8')
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS } }).outputText
  const mod = { exports: {} }
  new Function('module', 'exports', 'require', js)(mod, mod.exports, () => ({}))
  return { source, exports: mod.exports }
}

const placeholders = (s) => [...s.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]).sort().join(',')

function checkI18n() {
  const defaults = loadTs(path.join(dictDir, 'default.ts'))
  const dict = defaults.exports.default
  const translations = loadTs(path.join(dictDir, 'translations.ts')).exports.default
  const byNumber = new Map()
  for (const [key, n] of Object.entries(dict)) {
    if (byNumber.has(n)) fail(`${dictDir}/default.ts`, `number ${n} is used by "${byNumber.get(n)}" and "${key}"`)
    else byNumber.set(n, key)
  }
  for (const [lang, strings] of Object.entries(translations)) {
    const where = `${dictDir}/translations.ts: ${lang}`
    for (const [n, key] of byNumber) {
      const t = strings[n]
      if (typeof t !== 'string' || t.trim() === '') fail(where, `${n} ("${key}") is not translated`)
      else if (placeholders(t) !== placeholders(key))
        fail(where, `${n} has placeholders {${placeholders(t)}}, the English string {${placeholders(key)}}`)
    }
    for (const n of Object.keys(strings))
      if (!byNumber.has(Number(n))) fail(where, `${n} is not a number in default.ts`)
  }
  // Every dictionary string appears, as written in default.ts, in a source file.
  const code = listTs('startos')
    .filter((f) => !f.startsWith(dictDir))
    .map((f) => fs.readFileSync(path.resolve(root, f), 'utf8'))
    .join('\n')
  const sf = ts.createSourceFile('default.ts', defaults.source, ts.ScriptTarget.Latest, true)
  const visit = (node) => {
    if (ts.isPropertyAssignment(node) && ts.isNumericLiteral(node.initializer)) {
      const literal = node.name.getText(sf)
      const quoted = ts.isIdentifier(node.name) ? `'${literal}'` : literal
      if (!code.includes(quoted)) fail(`${dictDir}/default.ts`, `${quoted} is used nowhere in startos/`)
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
  checkWrapped()
}

// User-visible fields and error messages in startos/ (outside the manifest and
// versions, which hold per-language records) must not be bare string literals.
const visibleFields = new Set(['name', 'description', 'title', 'message', 'reason', 'display', 'warning', 'successMessage', 'errorMessage', 'placeholderDescription'])
const isLiteral = (n) => ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n) || ts.isTemplateExpression(n)

function checkWrapped() {
  const skip = [dictDir, path.join('startos', 'manifest'), path.join('startos', 'versions')]
  for (const file of listTs('startos').filter((f) => !skip.some((d) => f.startsWith(d)))) {
    const sf = ts.createSourceFile(file, fs.readFileSync(path.resolve(root, file), 'utf8'), ts.ScriptTarget.Latest, true)
    const at = (node) => `${file}:${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}`
    const visit = (node) => {
      if (ts.isPropertyAssignment(node) && visibleFields.has(node.name.getText(sf)) && isLiteral(node.initializer))
        fail(at(node), `${node.name.getText(sf)} is a bare string: put it in the dictionary and wrap it in i18n()`)
      if (ts.isNewExpression(node) && node.expression.getText(sf) === 'Error' && node.arguments?.[0] && isLiteral(node.arguments[0]))
        fail(at(node), 'an Error with a bare string: put it in the dictionary and wrap it in i18n()')
      ts.forEachChild(node, visit)
    }
    visit(sf)
  }
}

function listTs(dir) {
  return fs.readdirSync(path.resolve(root, dir), { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? listTs(p) : p.endsWith('.ts') ? [p] : []
  })
}

// ---- main ------------------------------------------------------------------

const file = process.argv[2]
if (!file) {
  console.error('usage: node scripts/startos-check.cjs MANIFEST.json')
  process.exit(2)
}
let manifest
try {
  manifest = JSON.parse(fs.readFileSync(file, 'utf8'))
} catch (e) {
  console.error(`startos: the manifest from javascript/index.js is not JSON: ${e.message}`)
  process.exit(1)
}
const { checker, type } = manifestType()
for (const [where, what] of typeErrors(checker, manifest, type, '')) fail(where, what)
checkSemantics(manifest)
checkExports()
checkI18n()
if (errors.length > 0) {
  for (const e of errors) console.error(`startos: ${e}`)
  process.exit(1)
}
console.log(
  `startos: manifest ${manifest.id} ${manifest.version} matches the Manifest type of SDK ${sdkVersion()}; exports and i18n check`,
)

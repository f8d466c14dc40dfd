/**
 * The manifest's descriptions per language (a LocaleString: en_US is the
 * fallback StartOS shows when the user's language is missing).
 */
export const short = {
  en_US: 'Declarative control plane for a two-Spark vLLM cluster',
  de_DE: 'Deklarative Steuerung für einen vLLM-Cluster aus zwei Sparks',
}

export const long = {
  en_US:
    'Spark Control keeps a desired-state file for two NVIDIA DGX Spark boxes (active model, model overrides, placement of the Parakeet and Magpie speech services, launcher update policy), polls what actually runs over SSH and HTTP, and converges the two safely. It serves a web UI, service discovery at /api/endpoints, and one OpenAI-compatible endpoint at /v1 that forwards to whichever model is active.',
  de_DE:
    'Spark Control führt eine Soll-Zustands-Datei für zwei NVIDIA-DGX-Spark-Rechner (aktives Modell, Modell-Overrides, Platzierung der Sprachdienste Parakeet und Magpie, Update-Regel des Launchers), fragt per SSH und HTTP ab, was tatsächlich läuft, und führt beides sicher zusammen. Es bietet eine Weboberfläche, Diensterkennung unter /api/endpoints und einen OpenAI-kompatiblen Endpunkt unter /v1, der an das jeweils aktive Modell weiterleitet.',
}

// What a registry login is made of, and where the registry client asks for one.

/** A registry credential. For an ACR refresh token: username ACR_REFRESH_TOKEN_USERNAME (acr.ts), password = refresh token. */
export interface Credential {
  username: string;
  password: string;
  /**
   * An OAuth2 refresh token for the registry's token server (docker config's `identitytoken`, or a
   * credential helper answering with username `<token>`). When set, tokens are fetched with the
   * OAuth2 `POST` (grant_type=refresh_token) instead of `GET` with Basic auth.
   */
  identityToken?: string;
}

/** The credential for a registry (its normalised domain), or undefined for anonymous access. */
export type CredentialSource = (registryDomain: string) => Promise<Credential | undefined>;

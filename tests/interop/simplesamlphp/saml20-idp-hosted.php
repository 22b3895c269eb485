<?php
/*
 * The IdP itself. Its entity ID is the URL of its metadata (__DYNAMIC:1__), its key and
 * certificate are made by the test in cert/.
 */
$metadata['__DYNAMIC:1__'] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp.key',
    'certificate' => 'idp.crt',
    'auth' => 'entree-users',
    // Published as WantAuthnRequestsSigned="true", which is what makes the bridge sign; each
    // sp-remote entry says validate.authnrequest too, so SimpleSAMLphp checks the signature.
    'validate.authnrequest' => true,
    // The bridge refuses unsigned logout messages; 1.19 signs them only when asked.
    'sign.logout' => true,
    'validate.logout' => true,
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
    'SingleLogoutServiceBinding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect',
];

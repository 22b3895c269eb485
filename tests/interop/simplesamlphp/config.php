<?php
/*
 * SimpleSAMLphp 1.19 as the interop IdP of tests/it/interop_simplesamlphp.rs. The test copies
 * this file into a temp dir of its own (SIMPLESAMLPHP_CONFIG_DIR) with the @...@ values filled
 * in; everything SimpleSAMLphp writes (sessions, temp files, its log) stays in that dir.
 */
$dir = __DIR__;

$config = [
    // `php -S` serves the package's www dir at the root, so the base URL is the server itself.
    'baseurlpath' => '@BASE_URL@/',
    'certdir' => $dir . '/cert/',
    'loggingdir' => $dir . '/log/',
    'datadir' => $dir . '/data/',
    'tempdir' => $dir . '/tmp/',
    'metadata.sources' => [
        ['type' => 'flatfile', 'directory' => $dir . '/metadata'],
    ],
    // Debian moves the attribute maps to /etc/simplesamlphp/attributemap; 1.19 looks for them
    // under its install dir unless told (core:AttributeMap fails with "Could not find
    // attribute map file" otherwise).
    'attributenamemapdir' => '@ATTRIBUTEMAP_DIR@/',

    'technicalcontact_name' => 'entree-bridge tests',
    'technicalcontact_email' => 'na@example.org',
    'timezone' => 'UTC',
    'secretsalt' => '@SECRET_SALT@',
    // No admin interface: a random password nobody knows, and no admin pages needed.
    'auth.adminpassword' => '@ADMIN_PASSWORD@',
    'admin.protectindexpage' => true,
    // The bridge reads the IdP's metadata from /saml2/idp/metadata.php.
    'admin.protectmetadata' => false,
    'admin.checkforupdates' => false,
    'showerrors' => true,
    'errorreporting' => false,
    'debug' => ['saml' => true, 'backtraces' => true, 'validatexml' => false],

    'logging.level' => SimpleSAML\Logger::DEBUG,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'logging.processname' => 'simplesamlphp',

    'enable.saml20-idp' => true,
    'enable.shib13-idp' => false,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true],

    // Sessions in PHP's own files, in the temp dir. Plain http on 127.0.0.1: the cookie
    // cannot be Secure, and SameSite=None (1.19's default where it can) needs Secure.
    'store.type' => 'phpsession',
    'session.phpsession.savepath' => $dir . '/sessions',
    'session.phpsession.cookiename' => 'SimpleSAML',
    'session.cookie.secure' => false,
    'session.cookie.samesite' => null,
    'session.cookie.path' => '/',
    'session.duration' => 8 * 60 * 60,
    // Not an array: every RelayState / ReturnTo is allowed (the two servers are on loopback
    // ports picked at random, and initSLO.php checks its RelayState against this list).
    'trusted.url.domains' => null,

    'language.available' => ['en'],
    'language.default' => 'en',
    'theme.use' => 'default',
];

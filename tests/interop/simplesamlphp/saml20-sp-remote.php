<?php
/*
 * The bridge's service providers, read from the bridge's own SP metadata with SimpleSAMLphp's
 * own metadata parser (what its metadata converter and metarefresh do): the test writes
 * sp/<name>.xml (the XML the bridge serves) and sp/<name>.json (the options of that test, e.g.
 * validate.authnrequest, assertion.encryption, authproc); both are read on every request, so
 * the test can add SPs after the server started.
 */
foreach (glob(__DIR__ . '/sp/*.xml') as $xmlFile) {
    $options = [];
    $jsonFile = substr($xmlFile, 0, -4) . '.json';
    if (is_file($jsonFile)) {
        $options = json_decode(file_get_contents($jsonFile), true, 32, JSON_THROW_ON_ERROR);
    }
    $entities = \SimpleSAML\Metadata\SAMLParser::parseDescriptorsString(file_get_contents($xmlFile));
    foreach ($entities as $entityId => $entity) {
        $sp = $entity->getMetadata20SP();
        if ($sp === null) {
            throw new \Exception("$xmlFile has no SPSSODescriptor");
        }
        // The options win over what the parser read (e.g. `keys` for a test that swaps them).
        $metadata[$entityId] = array_replace($sp, $options);
    }
}
